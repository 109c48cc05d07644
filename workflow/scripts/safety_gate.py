"""Snakemake entry for rule safety_gate: safescale.stages.analysis.safety_gate."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.analysis import safety_gate  # noqa: E402

o, p = snakemake.output, snakemake.params
safety_gate(
    labels=snakemake.input.labels,
    B=p.B,
    seed=p.seed,
    target_risk=p.target_risk,
    out_table=o.table,
    out_curves=o.curves,
    out_signals=o.signals,
    out_conditions=o.conditions,
)
