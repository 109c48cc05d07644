"""Snakemake entry for rule fetch_model_weights."""

from safescale.jobs import start

start(snakemake)
from safescale.stages import fetch_model_weights  # noqa: E402

fetch_model_weights(snakemake.params.entry, snakemake.params.cache_dir, snakemake.output.manifest)
