"""Snakemake entry for rule ensembles: safescale.stages.analysis.ensembles."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.analysis import ensembles  # noqa: E402

ensembles(
    labels=snakemake.input.labels,
    size=snakemake.params.size,
    out_table=snakemake.output.table,
)
