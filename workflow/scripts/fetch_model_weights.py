"""Snakemake entry for rule fetch_model_weights: safescale.stages.data.fetch_model_weights."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.data import fetch_model_weights  # noqa: E402

fetch_model_weights(
    entry=snakemake.params.entry,
    cache_dir=snakemake.params.cache_dir,
    out_manifest=snakemake.output.manifest,
)
