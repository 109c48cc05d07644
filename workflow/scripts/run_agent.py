"""Snakemake entry for rule run_agent."""

from safescale.jobs import start

start(snakemake)
from safescale.stages import run_agent  # noqa: E402

i, p = snakemake.input, snakemake.params
run_agent(
    i.benchmark,
    i.chunks,
    i.model,
    p.retriever,
    i.bm25,
    i.chroma,
    p.rrf_k,
    p.settings,
    snakemake.threads,
    p.n_batch,
    p.n_gpu_layers,
    snakemake.output.transcripts,
)
