"""The figures of a run: one list that the DAG's outputs come from. Each figure's caption
lives in one place only, `workflow/report/<name>.rst`, which the Snakemake report shows."""

from __future__ import annotations

FIGURES: tuple[str, ...] = (
    "decoupling",
    "confidence_by_outcome",
    "reliability",
    "scaling",
    "variance_decomposition",
    "heatmap_high_risk",
    "heatmap_accuracy",
    "sc_transitions",
    "ensembles",
    "lorenz",
    "latency_accuracy",
    "risk_coverage",
    "aurc_heatmap",
)
