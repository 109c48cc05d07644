"""Snakemake entry for rule safety_gate."""

from safescale.jobs import start

start(snakemake)
from safescale.analysis import safety_gate  # noqa: E402

o, p = snakemake.output, snakemake.params
safety_gate(
    snakemake.input.labels, p.B, p.seed, p.target_risk, o.table, o.curves, o.signals, o.conditions
)
