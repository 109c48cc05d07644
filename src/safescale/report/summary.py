"""SUMMARY.md: what a reader sees first, composed from the run's tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from safescale.report.tables import headline_vs_study, present, to_markdown


def summary_markdown(
    *,
    config: Mapping[str, Any],
    metrics: pd.DataFrame,
    table1: pd.DataFrame,
    table2: pd.DataFrame,
    slopes: pd.DataFrame,
    diffs: pd.DataFrame,
    gate_tab: pd.DataFrame,
    concentration: Mapping[str, Any],
    parse: pd.DataFrame,
    sim_slopes: pd.DataFrame,
    sim_diffs: pd.DataFrame,
    sim_recovery: pd.DataFrame,
) -> str:
    sim_slope_cols = present(
        sim_slopes, ("metric", "condition", "true_slope", "slope", "ci_low", "ci_high", "method")
    )
    slope_cols = present(
        slopes,
        (
            "metric",
            "condition",
            "slope",
            "ci_low",
            "ci_high",
            "p",
            "p_holm",
            "df",
            "method",
            "n_models",
            "n_families",
            "note",
        ),
    )
    diff_cols = present(
        diffs,
        (
            "safety_metric",
            "reference",
            "condition",
            "diff",
            "ci_low",
            "ci_high",
            "p",
            "p_holm",
            "p_bh",
            "df",
            "method",
            "note",
        ),
    )
    gate_cols = present(
        gate_tab,
        (
            "model",
            "condition",
            "signal",
            "available",
            "aurc",
            "coverage_at_target",
            "coverage_at_target_lo",
            "coverage_at_target_hi",
        ),
    )
    text = f"""# SaFE-Scale run summary

Models: {", ".join(config["models"])}. Conditions: {", ".join(config["conditions"])}.
Benchmark: `{config["benchmark"]["path"]}` ({int(metrics.n_questions.max())} questions per cell).
Retriever: {config["retrieval"]["retriever"]}. Bootstrap: B={config["analysis"]["bootstrap_B"]},
seed {config["analysis"]["bootstrap_seed"]}.

**These numbers come from this run's models and data, not from the published study.**
The study column is its mean over 34 models on RadSaFE-200, for orientation only.

## Headline: this run vs the study

{to_markdown(headline_vs_study(metrics))}

## Condition means over models (paired bootstrap p vs closed_book)

{to_markdown(table2)}

## Metrics with 95% CIs per model and condition

{to_markdown(table1)}

## Scaling slopes (per log10 parameters)

{to_markdown(slopes[slope_cols])}

## Does the safety slope differ from the accuracy (error) slope?

{to_markdown(diffs[diff_cols])}

## The same fits on a simulated study-like panel (34 models, 7 families, 200 questions)

Known true slopes; shows what the machinery recovers when the panel is as large as
the study's. Parameter recovery (config `analysis.simulation_reps` panels): overall
95% CI coverage {sim_recovery.overall_coverage.iloc[0]:.3f}.

{to_markdown(sim_slopes[sim_slope_cols])}

{to_markdown(sim_diffs[present(sim_diffs, diff_cols)])}

## Worst-case concentration of high-risk errors

{to_markdown(pd.DataFrame([concentration]))}

## Safety gate: coverage at a high-risk error rate <= {config["analysis"]["gate_target_risk"]}

{to_markdown(gate_tab[gate_cols])}

## Parsing, skips and errors

{to_markdown(parse)}
"""
    return text
