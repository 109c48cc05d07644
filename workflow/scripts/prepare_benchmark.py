"""Snakemake entry for rule prepare_benchmark."""

from safescale.jobs import start

start(snakemake)
from safescale.stages import prepare_benchmark  # noqa: E402

p = snakemake.params
prepare_benchmark(
    snakemake.input.source,
    p.fmt,
    p.columns,
    p.conditions,
    p.limit,
    p.shuffle,
    p.seed,
    snakemake.output.questions,
    snakemake.output.summary,
)
