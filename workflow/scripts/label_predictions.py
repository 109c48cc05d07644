"""Snakemake entry for rule label_predictions."""

from safescale.jobs import start

start(snakemake)
from safescale.analysis import label_predictions  # noqa: E402

i, o = snakemake.input, snakemake.output
label_predictions(
    i.benchmark, i.predictions, i.models, snakemake.params.threshold, o.parquet, o.csv
)
