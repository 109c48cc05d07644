"""Snakemake entry for rule provenance."""

from safescale.jobs import start

start(snakemake)
from safescale.provenance import write_manifest  # noqa: E402

write_manifest(snakemake.params.config, snakemake.input.models, snakemake.output.manifest)
