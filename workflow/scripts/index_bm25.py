"""Snakemake entry for rule index_bm25: safescale.stages.retrieval.index_bm25."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.retrieval import index_bm25  # noqa: E402

index_bm25(chunks=snakemake.input.chunks, out_index=snakemake.output.index)
