"""Snakemake entry for rule retrieve."""

from safescale.jobs import start

start(snakemake)
from safescale.stages import retrieve  # noqa: E402

retrieve(
    snakemake.input.benchmark,
    snakemake.wildcards.retriever,
    snakemake.input.bm25,
    snakemake.input.chroma,
    snakemake.params.rrf_k,
    snakemake.params.depth,
    snakemake.threads,
    snakemake.output.rankings,
)
