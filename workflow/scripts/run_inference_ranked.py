"""Snakemake entry for rule run_inference_ranked (safescale.stages.inference)."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.inference import run_inference_ranked  # noqa: E402

i = snakemake.input
run_inference_ranked(
    benchmark=i.benchmark,
    prompts=list(i.prompts),
    model=i.model,
    config=snakemake.config,
    threads=snakemake.threads,
    out_predictions=list(snakemake.output.predictions),
    out_summaries=list(snakemake.output.summaries),
)
