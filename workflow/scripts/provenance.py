"""Snakemake entry for rule provenance: safescale.stages.report.provenance."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.report import provenance  # noqa: E402

provenance(
    config=snakemake.params.config,
    models=snakemake.input.models,
    workflow_dir=snakemake.params.workflow_dir,
    out_manifest=snakemake.output.manifest,
)
