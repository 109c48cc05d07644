"""Snakemake entry for rule index_dense: safescale.stages.retrieval.index_dense."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.retrieval import index_dense  # noqa: E402

p = snakemake.params
index_dense(
    chunks=snakemake.input.chunks,
    threads=snakemake.threads,
    max_length=p.max_length,
    batch_size=p.batch_size,
    hnsw=p.hnsw,
    out_index=snakemake.output.index,
)
