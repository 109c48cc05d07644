"""Snakemake entry for rule plot_figures."""

from safescale.jobs import start

start(snakemake)
from safescale.analysis import plot_figures  # noqa: E402

i = snakemake.input
plot_figures(
    i.labels,
    i.metrics,
    i.ci,
    i.slopes,
    i.variance,
    i.ensembles,
    i.gate,
    i.curves,
    dict(snakemake.output.items()),
)
