"""Snakemake entry for rule retrieval_quality."""

from safescale.jobs import start

start(snakemake)
from safescale.stages import retrieval_quality  # noqa: E402

rankings = dict(zip(snakemake.params.retrievers, snakemake.input.rankings, strict=True))
retrieval_quality(
    snakemake.input.benchmark,
    snakemake.input.chunks,
    snakemake.params.gold_map,
    rankings,
    snakemake.output.table,
    snakemake.output.figure,
)
