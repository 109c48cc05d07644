"""Snakemake entry for rule judge_predictions."""

from safescale.jobs import start

start(snakemake)
from safescale.stages import judge_predictions  # noqa: E402

i = snakemake.input
judge_predictions(
    i.benchmark,
    i.predictions,
    i.judge or None,
    snakemake.config,
    snakemake.threads,
    snakemake.output.predictions,
    snakemake.output.summary,
)
