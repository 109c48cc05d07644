"""Snakemake entry for rule build_prompts: safescale.stages.prompts.build_prompts."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.prompts import build_prompts  # noqa: E402

i, p = snakemake.input, snakemake.params
build_prompts(
    benchmark=i.benchmark,
    chunks=i.chunks,
    rankings=i.get("rankings"),
    model=i.model,
    condition=snakemake.wildcards.condition,
    agentic=i.get("agentic"),
    top_k=p.top_k,
    prompting=p.prompting,
    greedy_max_tokens=p.greedy_max_tokens,
    out_prompts=snakemake.output.prompts,
)
