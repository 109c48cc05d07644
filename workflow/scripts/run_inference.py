"""Snakemake entry for rule run_inference: safescale.stages.inference.run_inference."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.inference import run_inference  # noqa: E402

i = snakemake.input
run_inference(
    benchmark=i.benchmark,
    prompts=i.prompts,
    model=i.model,
    config=snakemake.config,
    threads=snakemake.threads,
    out_predictions=snakemake.output.predictions,
    out_summary=snakemake.output.summary,
)
