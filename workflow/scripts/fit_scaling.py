"""Snakemake entry for rule fit_scaling."""

from safescale.jobs import start

start(snakemake)
from safescale.analysis import fit_scaling  # noqa: E402

o, p = snakemake.output, snakemake.params
fit_scaling(
    snakemake.input.labels,
    snakemake.input.metrics,
    snakemake.input.gate,
    p.B,
    p.seed,
    o.slopes,
    o.differences,
    o.bootstrap,
    o.question,
    o.variance,
)
