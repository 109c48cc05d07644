"""Snakemake entry for rule write_summary."""

from safescale.jobs import start

start(snakemake)
from safescale.analysis import write_summary  # noqa: E402

i, o = snakemake.input, snakemake.output
write_summary(
    snakemake.params.config,
    i.metrics,
    i.ci,
    i.paired,
    i.slopes,
    i.differences,
    i.ensembles,
    i.worst,
    i.concentration,
    i.gate,
    i.parse,
    i.sim_slopes,
    i.sim_differences,
    i.sim_recovery,
    o.summary,
    o.table1,
    o.table2,
)
