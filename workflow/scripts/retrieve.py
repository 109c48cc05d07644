"""Snakemake entry for rule retrieve: safescale.stages.retrieval.retrieve."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.retrieval import retrieve  # noqa: E402

i = snakemake.input
retrieve(
    benchmark=i.benchmark,
    retriever=snakemake.wildcards.retriever,
    bm25=i.bm25,
    chroma=i.chroma,
    rrf_k=snakemake.params.rrf_k,
    depth=snakemake.params.depth,
    threads=snakemake.threads,
    out_rankings=snakemake.output.rankings,
)
