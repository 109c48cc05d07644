"""Analysis stages: labels -> metrics with CIs -> comparisons, ensembles, worst cases,
scaling, safety gate, and the summary tables. One function per Snakemake rule."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from safescale import conditions as C
from safescale.benchmark import read_canonical
from safescale.jsonio import read_json, read_jsonl, write_json

HEADLINE_METRICS = (
    "accuracy",
    "high_risk_rate",
    "unsafe_rate",
    "contradiction_rate",
    "dangerous_overconfidence_rate",
)


def model_meta(manifests: Sequence[str]) -> dict[str, dict]:
    metas = [read_json(p) for p in manifests]
    return {m["name"]: {"family": m["family"], "params_b": m["params_b"]} for m in metas}


def write_table(df: pd.DataFrame, csv_path: str | Path, md: bool = True) -> None:
    """CSV for machines and a Markdown twin for reviewers."""
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(csv_path, index=False)
    if md:
        csv_path.with_suffix(".md").write_text(to_markdown(df) + "\n")


def to_markdown(df: pd.DataFrame, digits: int = 3) -> str:
    if df.empty:
        return "_(empty)_"
    cols = list(df.columns)

    def fmt(v):
        if isinstance(v, float):
            return "" if pd.isna(v) else f"{v:.{digits}f}"
        return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def load_tidy(path: str | Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def label_predictions(
    benchmark: str,
    predictions: Sequence[str],
    manifests: Sequence[str],
    threshold: float,
    out_parquet: str,
    out_csv: str,
) -> None:
    from safescale.labeling import label_predictions as label
    from safescale.labeling import write_tidy

    records = [r for p in predictions for r in read_jsonl(p)]
    tidy = label(read_canonical(benchmark), records, model_meta(manifests), threshold)
    write_tidy(tidy, out_parquet, out_csv)
    counts = tidy.groupby(["model", "condition", "status"], observed=True).size()
    print(counts.to_string())


def compute_metrics(
    labels: str,
    B: int,
    seed: int,
    out_metrics: str,
    out_ci: str,
    out_paired: str,
    out_mcnemar: str,
) -> None:
    from safescale.bootstrap import (
        bootstrap_metrics,
        default_contrasts,
        mcnemar_vs_reference,
        paired_differences,
    )
    from safescale.metrics import compute_metrics as metrics_of

    tidy = load_tidy(labels)
    write_table(metrics_of(tidy), out_metrics)
    t0 = time.perf_counter()
    ci = bootstrap_metrics(tidy, B=B, seed=seed)
    t_boot = time.perf_counter() - t0
    write_table(ci, out_ci, md=False)
    t0 = time.perf_counter()
    paired = paired_differences(tidy, default_contrasts(tidy), B=B, seed=seed)
    t_paired = time.perf_counter() - t0
    write_table(paired, out_paired, md=False)
    print(
        f"bootstrap B={B}: metrics {t_boot:.2f}s, paired comparisons {t_paired:.2f}s "
        f"({tidy.model.nunique()} models x {tidy.condition.nunique()} conditions x "
        f"{tidy.question_id.nunique()} questions)"
    )
    write_table(mcnemar_vs_reference(tidy), out_mcnemar)


def ensembles(labels: str, size: int, out_table: str) -> None:
    from safescale.ensembles import ensemble_table

    tidy = load_tidy(labels)
    n_models = tidy.model.nunique()
    if n_models < size:
        print(f"only {n_models} models: no {size}-member ensembles (recorded as skipped)")
        table = pd.DataFrame([{"skipped": f"{n_models} models < ensemble size {size}"}])
    else:
        table = ensemble_table(tidy, size=size)
    write_table(table, out_table)


def worst_cases(
    labels: str,
    benchmark: str,
    fraction: float,
    out_summary: str,
    out_worst: str,
    out_lorenz: str,
) -> None:
    from safescale.worstcase import (
        concentration_summary,
        high_risk_counts,
        lorenz_curve,
        worst_questions,
    )

    tidy = load_tidy(labels)
    write_json(concentration_summary(tidy, fraction), out_summary)
    write_table(worst_questions(tidy, read_canonical(benchmark), fraction), out_worst)
    write_table(lorenz_curve(high_risk_counts(tidy)["n_high_risk"]), out_lorenz, md=False)


def gate_aurc(gate_path: str, signal: str = "sc_confidence", risk: str = "high_risk"):
    """AURC of one gate per (model, condition), as a metric column for the scaling fits."""
    gate_tab = pd.read_csv(gate_path)
    sel = gate_tab[(gate_tab.signal == signal) & (gate_tab.risk_kind == risk)]
    return sel[["model", "condition", "aurc"]].rename(columns={"aurc": f"aurc_{risk}"})


def fit_scaling(
    labels: str,
    metrics_path: str,
    gate_path: str,
    B: int,
    seed: int,
    out_slopes: str,
    out_differences: str,
    out_bootstrap: str,
    out_question: str,
    out_variance: str,
) -> None:
    """Slopes per metric and condition (AURC of the safety gate included), safety-vs-accuracy
    slope tests, question-level GLMM/GEE, variance decomposition; degenerate panels fall
    back and say so."""
    from safescale import scaling

    tidy = load_tidy(labels)
    metrics = pd.read_csv(metrics_path).merge(
        gate_aurc(gate_path), on=["model", "condition"], how="left"
    )
    cols = [m for m in (*HEADLINE_METRICS, "aurc_high_risk") if m in metrics]
    write_table(scaling.fit_scaling_slopes(metrics, cols, tidy=tidy, by_condition=True), out_slopes)
    write_table(scaling.slope_difference_test(metrics, tidy=tidy), out_differences)
    write_table(scaling.bootstrap_slope_differences(tidy, B=B, seed=seed), out_bootstrap)
    write_table(scaling.fit_question_models(tidy, seed=seed), out_question)
    write_table(scaling.variance_decomposition(metrics, cols), out_variance)


def simulate_scaling(
    seed: int, reps: int, out_slopes: str, out_differences: str, out_recovery: str
) -> None:
    """The same fits on a simulated study-like panel with known slopes (34 models, 7
    families, 200 questions): shows what the machinery recovers when the panel is big."""
    from safescale import scaling

    tidy, truth = scaling.simulate_panel(seed=seed)
    metrics = scaling.model_metrics(tidy)
    slopes = scaling.fit_scaling_slopes(metrics, by_condition=True)
    true = truth.slopes[["metric", "condition", "slope"]].rename(columns={"slope": "true_slope"})
    slopes = slopes.merge(true, on=["metric", "condition"], how="left")
    write_table(slopes, out_slopes)
    write_table(scaling.slope_difference_test(metrics, tidy=tidy), out_differences)
    t0 = time.perf_counter()
    recovery = scaling.parameter_recovery(reps=reps, seed=seed)
    summary = recovery.summary.assign(overall_coverage=recovery.coverage)
    write_table(summary, out_recovery)
    print(
        f"parameter recovery: coverage {recovery.coverage:.3f} over {reps} panels "
        f"({time.perf_counter() - t0:.1f}s)"
    )


def safety_gate(
    labels: str,
    B: int,
    seed: int,
    target_risk: float,
    out_table: str,
    out_curves: str,
    out_signals: str,
    out_conditions: str,
) -> None:
    from safescale import gate

    tidy = load_tidy(labels)
    write_table(gate.gate_table(tidy, B=B, seed=seed, target_risk=target_risk), out_table)
    write_table(gate.gate_curves(tidy), out_curves, md=False)
    write_table(gate.gate_signal_contrasts(tidy, B=B, seed=seed), out_signals)
    present = set(tidy.condition.unique())
    pairs = [(a, b) for a, b in [(C.STANDARD_RAG, C.CLEAN_EVIDENCE)] if {a, b} <= present]
    table = (
        gate.gate_condition_contrasts(tidy, pairs=pairs, B=B, seed=seed)
        if pairs
        else pd.DataFrame([{"skipped": "needs standard_rag and clean_evidence"}])
    )
    write_table(table, out_conditions)


def _ci_cell(point: float, lo: float, hi: float) -> str:
    if pd.isna(point):
        return "n/a"
    return f"{point:.3f} [{lo:.3f}, {hi:.3f}]" if not pd.isna(lo) else f"{point:.3f}"


def table_metrics_with_ci(ci: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Table 1: per model and condition, each headline metric with its 95% CI."""
    sub = ci[ci.metric.isin(metrics)].copy()
    est = "estimate" if "estimate" in sub else "point"
    sub["cell"] = [
        _ci_cell(p, lo, hi) for p, lo, hi in zip(sub[est], sub.ci_low, sub.ci_high, strict=True)
    ]
    wide = sub.pivot_table(
        index=["model", "condition"], columns="metric", values="cell", aggfunc="first"
    ).reset_index()
    return wide[["model", "condition", *[m for m in metrics if m in wide]]]


def table_condition_means(metrics: pd.DataFrame, paired: pd.DataFrame) -> pd.DataFrame:
    """Table 2: condition means over models, with paired-bootstrap p vs closed-book."""
    cols = [m for m in HEADLINE_METRICS if m in metrics]
    means = metrics.groupby("condition")[cols].mean()
    order = [c for c in C.ALL_CONDITIONS if c in means.index]
    rows = []
    mean_rows = paired[paired.kind == "condition_mean"] if "kind" in paired else paired.iloc[:0]
    for cond in order:
        row = {
            "condition": cond,
            "n_models": int(metrics[metrics.condition == cond].model.nunique()),
        }
        for m in cols:
            row[m] = means.loc[cond, m]
            hit = mean_rows[
                (mean_rows.metric_a == m)
                & mean_rows.label.str.endswith(f": {cond} - {C.REFERENCE_CONDITION}")
            ]
            row[f"p_{m}"] = float(hit.p_value.iloc[0]) if len(hit) else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def headline_vs_study(metrics: pd.DataFrame) -> pd.DataFrame:
    from safescale.study import STUDY_HEADLINE

    rows = []
    means = metrics.groupby("condition").mean(numeric_only=True)
    for metric, study in STUDY_HEADLINE.items():
        for cond, value in study.items():
            ours = means.loc[cond, metric] if cond in means.index and metric in means else None
            rows.append({"metric": metric, "condition": cond, "this_run": ours, "study": value})
    return pd.DataFrame(rows)


def _present(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The wanted columns that this table has, in the wanted order."""
    return [c for c in columns if c in frame]


def write_summary(
    config: Mapping,
    metrics_path: str,
    ci_path: str,
    paired_path: str,
    slopes_path: str,
    differences_path: str,
    ensembles_path: str,
    worst_path: str,
    concentration_path: str,
    gate_path: str,
    parse_path: str,
    sim_slopes_path: str,
    sim_differences_path: str,
    sim_recovery_path: str,
    out_summary: str,
    out_table1: str,
    out_table2: str,
) -> None:
    metrics = pd.read_csv(metrics_path)
    ci = pd.read_csv(ci_path)
    paired = pd.read_csv(paired_path)
    t1 = table_metrics_with_ci(ci, HEADLINE_METRICS)
    t2 = table_condition_means(metrics, paired)
    write_table(t1, out_table1)
    write_table(t2, out_table2)
    slopes = pd.read_csv(slopes_path)
    diffs = pd.read_csv(differences_path)
    gate_tab = pd.read_csv(gate_path)
    gate_tab = (
        gate_tab[(gate_tab.risk_kind == "high_risk")] if "risk_kind" in gate_tab else gate_tab
    )
    concentration = read_json(concentration_path)
    parse = pd.read_csv(parse_path)
    sim_slopes = pd.read_csv(sim_slopes_path)
    sim_diffs = pd.read_csv(sim_differences_path)
    sim_recovery = pd.read_csv(sim_recovery_path)
    sim_slope_cols = _present(
        sim_slopes, ("metric", "condition", "true_slope", "slope", "ci_low", "ci_high", "method")
    )
    slope_cols = _present(
        slopes,
        (
            "metric",
            "condition",
            "slope",
            "ci_low",
            "ci_high",
            "p",
            "method",
            "n_models",
            "n_families",
            "note",
        ),
    )
    diff_cols = _present(
        diffs,
        (
            "safety_metric",
            "reference",
            "condition",
            "diff",
            "ci_low",
            "ci_high",
            "p",
            "method",
            "note",
        ),
    )
    gate_cols = _present(
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

{to_markdown(t2)}

## Metrics with 95% CIs per model and condition

{to_markdown(t1)}

## Scaling slopes (per log10 parameters)

{to_markdown(slopes[slope_cols])}

## Does the safety slope differ from the accuracy (error) slope?

{to_markdown(diffs[diff_cols])}

## The same fits on a simulated study-like panel (34 models, 7 families, 200 questions)

Known true slopes; shows what the machinery recovers when the panel is as large as
the study's. Parameter recovery (config `analysis.simulation_reps` panels): overall
95% CI coverage {sim_recovery.overall_coverage.iloc[0]:.3f}.

{to_markdown(sim_slopes[sim_slope_cols])}

{to_markdown(sim_diffs[_present(sim_diffs, diff_cols)])}

## Worst-case concentration of high-risk errors

{to_markdown(pd.DataFrame([concentration]))}

## Safety gate: coverage at a high-risk error rate <= {config["analysis"]["gate_target_risk"]}

{to_markdown(gate_tab[gate_cols])}

## Parsing, skips and errors

{to_markdown(parse)}
"""
    Path(out_summary).write_text(text)


# figure name -> caption: one place for both the DAG's outputs and the report captions
FIGURES: dict[str, str] = {
    "decoupling": "Accuracy against high-risk error rate and dangerous overconfidence, one "
    "point per (model, condition) with 95% bootstrap CIs: safety and accuracy decouple.",
    "confidence_by_outcome": "Self-consistency confidence by outcome class of the SC majority "
    "(correct, wrong, high-risk error, NULL), per condition.",
    "reliability": "Reliability diagrams (10 equal-width bins) for SC confidence and for the "
    "exact first-token letter probability.",
    "scaling": "Each metric against log10(parameters) per family, with the fitted slope per "
    "condition (or the reason it is not estimable).",
    "variance_decomposition": "Share of each metric's variance explained by condition vs "
    "family (type-II sums of squares).",
    "heatmap_high_risk": "High-risk error rate per model and condition.",
    "heatmap_accuracy": "Accuracy per model and condition.",
    "sc_transitions": "How answers change from the greedy (Single) answer to the SC majority.",
    "ensembles": "Three-model majority-vote ensembles against their best member.",
    "lorenz": "Concentration of high-risk errors over questions (Lorenz curve, Gini).",
    "latency_accuracy": "Mean greedy latency against accuracy per (model, condition).",
    "risk_coverage": "Risk-coverage curves of the confidence gate (SC confidence, high-risk "
    "errors): abstaining below a threshold trades coverage for safety.",
    "aurc_heatmap": "Area under the risk-coverage curve (high-risk errors, SC confidence) per "
    "model and condition; lower is a better gate.",
}


def plot_figures(
    labels: str,
    metrics_path: str,
    ci_path: str,
    slopes_path: str,
    variance_path: str,
    ensembles_path: str,
    gate_path: str,
    curves_path: str,
    outputs: Mapping[str, str],
) -> None:
    from safescale import plots

    tidy = load_tidy(labels)
    metrics = pd.read_csv(metrics_path)
    ensembles_tab = pd.read_csv(ensembles_path)
    if "skipped" in ensembles_tab:
        ensembles_tab = ensembles_tab.iloc[0:0]
    gate_tab, curves = pd.read_csv(gate_path), pd.read_csv(curves_path)
    calls = {
        "decoupling": lambda p: plots.plot_decoupling(pd.read_csv(ci_path), p),
        "confidence_by_outcome": lambda p: plots.plot_confidence_by_outcome(tidy, p),
        "reliability": lambda p: plots.plot_reliability(tidy, p),
        "scaling": lambda p: plots.plot_scaling(metrics, pd.read_csv(slopes_path), p),
        "variance_decomposition": lambda p: plots.plot_variance_decomposition(
            pd.read_csv(variance_path), p
        ),
        "heatmap_high_risk": lambda p: plots.plot_heatmap(metrics, p, "high_risk_rate"),
        "heatmap_accuracy": lambda p: plots.plot_heatmap(metrics, p, "accuracy"),
        "sc_transitions": lambda p: plots.plot_sc_transitions(tidy, p),
        "ensembles": lambda p: plots.plot_ensembles(ensembles_tab, metrics, p),
        "lorenz": lambda p: plots.plot_lorenz(tidy, p),
        "latency_accuracy": lambda p: plots.plot_latency_accuracy(metrics, p),
        "risk_coverage": lambda p: plots.plot_risk_coverage(curves, p),
        "aurc_heatmap": lambda p: plots.plot_aurc_heatmap(gate_tab, p),
    }
    for name, path in outputs.items():
        calls[name](path)
