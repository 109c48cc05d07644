"""Snakemake entry for rule run_agent: safescale.stages.prompts.run_agent."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.prompts import run_agent  # noqa: E402

i, p = snakemake.input, snakemake.params
run_agent(
    benchmark=i.benchmark,
    chunks=i.chunks,
    model=i.model,
    retriever=p.retriever,
    bm25=i.bm25,
    chroma=i.chroma,
    rrf_k=p.rrf_k,
    settings=p.settings,
    threads=snakemake.threads,
    n_batch=p.n_batch,
    n_gpu_layers=p.n_gpu_layers,
    out_transcripts=snakemake.output.transcripts,
)
