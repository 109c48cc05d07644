"""Snakemake entry for rule worst_cases."""

from safescale.jobs import start

start(snakemake)
from safescale.analysis import worst_cases  # noqa: E402

o = snakemake.output
worst_cases(
    snakemake.input.labels,
    snakemake.input.benchmark,
    snakemake.params.fraction,
    o.summary,
    o.worst,
    o.lorenz,
)
