"""Snakemake entry for rule index_dense."""

from safescale.jobs import start

start(snakemake)
from safescale.stages import index_dense  # noqa: E402

p = snakemake.params
index_dense(
    snakemake.input.chunks,
    snakemake.output.index,
    snakemake.threads,
    p.max_length,
    p.batch_size,
    p.hnsw,
)
