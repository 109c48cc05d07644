"""Snakemake entry for rule worst_cases: safescale.stages.analysis.worst_cases."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.analysis import worst_cases  # noqa: E402

o = snakemake.output
worst_cases(
    labels=snakemake.input.labels,
    benchmark=snakemake.input.benchmark,
    fraction=snakemake.params.fraction,
    out_summary=o.summary,
    out_worst=o.worst,
    out_lorenz=o.lorenz,
)
