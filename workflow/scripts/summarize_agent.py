"""Snakemake entry for rule summarize_agent: safescale.stages.prompts.summarize_agent."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.prompts import summarize_agent  # noqa: E402

summarize_agent(
    transcripts_of=dict(snakemake.params.transcripts_of),
    out_summary=snakemake.output.summary,
)
