"""Snakemake entry for rule index_bm25."""

from safescale.jobs import start

start(snakemake)
from safescale.stages import index_bm25  # noqa: E402

index_bm25(snakemake.input.chunks, snakemake.output.index)
