"""Snakemake entry for rule retrieval_quality: safescale.stages.retrieval.retrieval_quality."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.retrieval import retrieval_quality  # noqa: E402

i, p = snakemake.input, snakemake.params
retrieval_quality(
    benchmark=i.benchmark,
    chunks=i.chunks,
    gold_map=p.gold_map,
    rankings=dict(zip(p.retrievers, i.rankings, strict=True)),
    out_table=snakemake.output.table,
    out_figure=snakemake.output.figure,
)
