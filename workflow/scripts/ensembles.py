"""Snakemake entry for rule ensembles."""

from safescale.jobs import start

start(snakemake)
from safescale.analysis import ensembles  # noqa: E402

ensembles(snakemake.input.labels, snakemake.params.size, snakemake.output.table)
