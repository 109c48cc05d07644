"""Snakemake entry for rule summarize_parsing."""

from safescale.jobs import start

start(snakemake)
from safescale.stages import summarize_parsing  # noqa: E402

summarize_parsing(
    snakemake.input.summaries,
    snakemake.input.predictions,
    snakemake.output.table,
    snakemake.output.unparsed,
)
