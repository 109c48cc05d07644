"""Snakemake entry for rule plot_figures: safescale.stages.report.plot_figures."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.report import plot_figures  # noqa: E402

i = snakemake.input
plot_figures(
    labels=i.labels,
    metrics=i.metrics,
    ci=i.ci,
    slopes=i.slopes,
    variance=i.variance,
    ensembles=i.ensembles,
    gate=i.gate,
    curves=i.curves,
    outputs=dict(snakemake.output.items()),
)
