"""Snakemake entry for rule run_inference."""

from safescale.jobs import start

start(snakemake)
from safescale.stages import run_inference  # noqa: E402

i = snakemake.input
run_inference(
    i.benchmark,
    i.prompts,
    i.model,
    snakemake.config,
    snakemake.threads,
    snakemake.output.predictions,
    snakemake.output.summary,
)
