"""Snakemake entry for rule prepare_benchmark: safescale.stages.data.prepare_benchmark."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.data import prepare_benchmark  # noqa: E402

p = snakemake.params
prepare_benchmark(
    source=snakemake.input.source,
    fmt=p.fmt,
    columns=p.columns,
    label_values=p.label_values,
    options=p.options,
    conditions=p.conditions,
    limit=p.limit,
    shuffle=p.shuffle,
    stratify_by=p.stratify_by,
    seed=p.seed,
    out_questions=snakemake.output.questions,
    out_summary=snakemake.output.summary,
)
