"""Snakemake entry for rule chunk_corpus: safescale.stages.retrieval.chunk_corpus."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.retrieval import chunk_corpus  # noqa: E402

p = snakemake.params
chunk_corpus(
    source=snakemake.input.corpus,
    fmt=p.fmt,
    columns=p.columns,
    chunk_tokens=p.chunk_tokens,
    overlap=p.overlap,
    max_length=p.max_length,
    out_chunks=snakemake.output.chunks,
)
