"""Snakemake entry for rule chunk_corpus."""

from safescale.jobs import start

start(snakemake)
from safescale.stages import chunk_corpus  # noqa: E402

p = snakemake.params
chunk_corpus(
    snakemake.input.corpus,
    p.fmt,
    p.columns,
    p.chunk_tokens,
    p.overlap,
    p.max_length,
    snakemake.output.chunks,
)
