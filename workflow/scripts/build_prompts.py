"""Snakemake entry for rule build_prompts."""

from safescale.jobs import start

start(snakemake)
from safescale.stages import build_prompts  # noqa: E402

i, p = snakemake.input, snakemake.params
build_prompts(
    i.benchmark,
    i.chunks,
    i.get("rankings"),
    i.model,
    snakemake.wildcards.condition,
    i.get("agentic"),
    p.top_k,
    p.prompting,
    p.greedy_max_tokens,
    snakemake.output.prompts,
)
