"""Snakemake entry for rule summarize_parsing: safescale.stages.inference.summarize_parsing."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.inference import summarize_parsing  # noqa: E402

summarize_parsing(
    summaries=snakemake.input.summaries,
    predictions=snakemake.input.predictions,
    out_table=snakemake.output.table,
    out_unparsed=snakemake.output.unparsed,
)
