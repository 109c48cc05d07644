"""Snakemake entry for rule judge_predictions: safescale.stages.inference.judge_predictions."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.inference import judge_predictions  # noqa: E402

i, o = snakemake.input, snakemake.output
judge_predictions(
    benchmark=i.benchmark,
    predictions=i.predictions,
    judge=i.judge or None,
    config=snakemake.config,
    threads=snakemake.threads,
    out_predictions=o.predictions,
    out_summary=o.summary,
)
