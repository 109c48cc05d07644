"""Snakemake entry for rule summarize_agent: safescale.stages.prompts.summarize_agent."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.prompts import summarize_agent  # noqa: E402

summarize_agent(
    transcripts=list(snakemake.input.transcripts),
    models=list(snakemake.params.models),
    out_summary=snakemake.output.summary,
)
