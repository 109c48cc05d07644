"""Snakemake entry for rule fit_scaling: safescale.stages.analysis.fit_scaling."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.analysis import fit_scaling  # noqa: E402

i, o, p = snakemake.input, snakemake.output, snakemake.params
fit_scaling(
    labels=i.labels,
    metrics=i.metrics,
    gate=i.gate,
    models=list(i.models),
    B=p.B,
    seed=p.seed,
    out_slopes=o.slopes,
    out_differences=o.differences,
    out_bootstrap=o.bootstrap,
    out_question=o.question,
    out_variance=o.variance,
    out_interaction=o.interaction,
    out_joint=o.joint,
    out_sensitivity=o.sensitivity,
)
