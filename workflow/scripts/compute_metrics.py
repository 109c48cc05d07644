"""Snakemake entry for rule compute_metrics: safescale.stages.analysis.compute_metrics."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.analysis import compute_metrics  # noqa: E402

o, p = snakemake.output, snakemake.params
compute_metrics(
    labels=snakemake.input.labels,
    B=p.B,
    seed=p.seed,
    out_metrics=o.metrics,
    out_ci=o.ci,
    out_paired=o.paired,
    out_mcnemar=o.mcnemar,
)
