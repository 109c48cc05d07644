"""Snakemake entry for rule write_summary: safescale.stages.report.write_summary."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.report import write_summary  # noqa: E402

i, o = snakemake.input, snakemake.output
write_summary(
    config=snakemake.params.config,
    benchmark=i.benchmark,
    metrics=i.metrics,
    ci=i.ci,
    paired=i.paired,
    mcnemar=i.mcnemar,
    labels=i.labels,
    slopes=i.slopes,
    differences=i.differences,
    interaction=i.interaction,
    joint=i.joint,
    ensembles=i.ensembles,
    worst=i.worst,
    concentration=i.concentration,
    gate=i.gate,
    parse=i.parse,
    sim_slopes=i.sim_slopes,
    sim_differences=i.sim_differences,
    sim_recovery=i.sim_recovery,
    out_summary=o.summary,
    out_table1=o.table1,
    out_table2=o.table2,
    out_intro=o.intro,
    agentic_summary=i.get("agentic_summary"),
)
