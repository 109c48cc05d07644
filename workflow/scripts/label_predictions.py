"""Snakemake entry for rule label_predictions: safescale.stages.analysis.label_predictions."""

import workflow_package  # noqa: F401  (src/ first on sys.path)

from safescale.jobs import start

start(snakemake)
from safescale.stages.analysis import label_predictions  # noqa: E402

i, o = snakemake.input, snakemake.output
label_predictions(
    benchmark=i.benchmark,
    predictions=i.predictions,
    models=i.models,
    threshold=snakemake.params.threshold,
    out_parquet=o.parquet,
    out_csv=o.csv,
)
