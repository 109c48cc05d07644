"""Snakemake entry for rule simulate_scaling."""

from safescale.jobs import start

start(snakemake)
from safescale.analysis import simulate_scaling  # noqa: E402

o = snakemake.output
simulate_scaling(snakemake.params.seed, snakemake.params.reps, o.slopes, o.differences, o.recovery)
