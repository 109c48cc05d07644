"""Snakemake entry for rule case_browser: safescale.stages.analysis.case_browser."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.analysis import case_browser  # noqa: E402

i, p = snakemake.input, snakemake.params
case_browser(
    labels=i.labels,
    benchmark=i.benchmark,
    model=p.model,
    prompts=dict(zip(p.conditions, i.prompts, strict=True)),
    predictions=dict(zip(p.conditions, i.predictions, strict=True)),
    out_table=snakemake.output.table,
    out_html=snakemake.output.html,
)
