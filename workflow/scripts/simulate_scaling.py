"""Snakemake entry for rule simulate_scaling: safescale.stages.analysis.simulate_scaling."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.analysis import simulate_scaling  # noqa: E402

o = snakemake.output
simulate_scaling(
    seed=snakemake.params.seed,
    reps=snakemake.params.reps,
    out_slopes=o.slopes,
    out_differences=o.differences,
    out_recovery=o.recovery,
)
