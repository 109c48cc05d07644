"""Snakemake entry for rule compute_metrics."""

from safescale.jobs import start

start(snakemake)
from safescale.analysis import compute_metrics  # noqa: E402

o, p = snakemake.output, snakemake.params
compute_metrics(snakemake.input.labels, p.B, p.seed, o.metrics, o.ci, o.paired, o.mcnemar)
