"""Stages of workflow/rules/analysis.smk: labels -> metrics with CIs -> comparisons,
ensembles, worst cases, scaling fits and the safety gate."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import pandas as pd

from safescale import conditions as C
from safescale.analysis.labeling import answered, read_tidy
from safescale.analysis.metrics import HEADLINE_METRICS
from safescale.data.benchmark import read_canonical
from safescale.jsonio import read_json, read_jsonl, write_json, write_text
from safescale.report.tables import write_table


def _model_meta(manifests: Sequence[str]) -> dict[str, dict]:
    metas = [read_json(p) for p in manifests]
    return {m["name"]: {"family": m["family"], "params_b": m["params_b"]} for m in metas}


def _model_covariates(manifests: Sequence[str]) -> pd.DataFrame:
    """Per model, the registry's sensitivity covariates as the fetch step recorded them
    (None = not recorded; a manifest written before they existed has none)."""
    from safescale.scaling.sensitivity import COVARIATES

    rows = [
        {"model": m["name"], **{c: m.get(c) for c in COVARIATES}} for m in map(read_json, manifests)
    ]
    return pd.DataFrame(rows, columns=["model", *COVARIATES])


def label_predictions(
    *,
    benchmark: str,
    predictions: Sequence[str],
    models: Sequence[str],
    threshold: float,
    out_parquet: str,
    out_csv: str,
) -> None:
    """One tidy row per (model, condition, question): answers, flags, confidences."""
    from safescale.analysis.labeling import label_predictions as label
    from safescale.analysis.labeling import write_tidy

    records = [r for p in predictions for r in read_jsonl(p)]
    tidy = label(read_canonical(benchmark), records, _model_meta(models), threshold)
    write_tidy(tidy, out_parquet, out_csv)
    counts = tidy.groupby(["model", "condition", "status"], observed=True).size()
    print(counts.to_string())


def compute_metrics(
    *,
    labels: str,
    B: int,
    seed: int,
    out_metrics: str,
    out_ci: str,
    out_paired: str,
    out_mcnemar: str,
) -> None:
    from safescale.analysis.bootstrap import (
        bootstrap_metrics,
        default_contrasts,
        mcnemar_vs_reference,
        paired_differences,
    )
    from safescale.analysis.metrics import compute_metrics as metrics_of

    tidy = read_tidy(labels)
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


def ensembles(*, labels: str, size: int, out_table: str) -> None:
    from safescale.analysis.ensembles import ensemble_table

    tidy = answered(read_tidy(labels))
    n_models = tidy.model.nunique()
    if n_models < size:
        print(f"only {n_models} models: no {size}-member ensembles (recorded as skipped)")
        table = pd.DataFrame([{"skipped": f"{n_models} models < ensemble size {size}"}])
    else:
        table = ensemble_table(tidy, size=size)
    write_table(table, out_table)


def worst_cases(
    *,
    labels: str,
    benchmark: str,
    fraction: float,
    out_summary: str,
    out_worst: str,
    out_lorenz: str,
) -> None:
    from safescale.analysis.worstcase import (
        concentration_summary,
        high_risk_counts,
        lorenz_curve,
        worst_questions,
    )

    tidy = answered(read_tidy(labels))
    write_json(concentration_summary(tidy, fraction), out_summary)
    write_table(worst_questions(tidy, read_canonical(benchmark), fraction), out_worst)
    write_table(lorenz_curve(high_risk_counts(tidy)["n_high_risk"]), out_lorenz, md=False)


def _gate_aurc(gate_path: str, signal: str = "sc_confidence", risk: str = "high_risk"):
    """AURC of one gate per (model, condition), as a metric column for the scaling fits."""
    gate_tab = pd.read_csv(gate_path)
    sel = gate_tab[(gate_tab.signal == signal) & (gate_tab.risk_kind == risk)]
    return sel[["model", "condition", "aurc"]].rename(columns={"aurc": f"aurc_{risk}"})


def fit_scaling(
    *,
    labels: str,
    metrics: str,
    gate: str,
    models: Sequence[str],
    B: int,
    seed: int,
    out_slopes: str,
    out_differences: str,
    out_bootstrap: str,
    out_question: str,
    out_variance: str,
    out_interaction: str,
    out_joint: str,
    out_sensitivity: str,
) -> None:
    """Slopes per metric and condition (AURC of the safety gate included), safety-vs-accuracy
    slope tests (per metric and jointly), the scale x condition interaction test,
    question-level models, variance decomposition and the logit/covariate sensitivity
    fits (covariates from the model manifests ``models``); panels too small for a test
    print "not estimable" and say why."""
    from safescale import scaling
    from safescale.scaling.hypotheses import (
        joint_slope_difference_test,
        scale_condition_interaction,
    )
    from safescale.scaling.sensitivity import fit_sensitivity_slopes

    tidy = answered(read_tidy(labels))
    table = pd.read_csv(metrics)
    skipped = table["cell_status"] == "skipped"
    if skipped.any():
        cells = ", ".join(table.loc[skipped, "model"] + "/" + table.loc[skipped, "condition"])
        print(f"skipped cells left out of every fit: {cells}")
    table = table[~skipped].merge(_gate_aurc(gate), on=["model", "condition"], how="left")
    cols = [m for m in (*HEADLINE_METRICS, "aurc_high_risk") if m in table]
    write_table(scaling.fit_scaling_slopes(table, cols, by_condition=True), out_slopes)
    write_table(scaling.slope_difference_test(table), out_differences)
    write_table(scaling.bootstrap_slope_differences(tidy, B=B, seed=seed), out_bootstrap)
    write_table(scaling.fit_question_models(tidy, seed=seed), out_question)
    write_table(scaling.variance_decomposition(table, cols, seed=seed), out_variance)
    write_table(scale_condition_interaction(table, cols, seed=seed), out_interaction)
    write_table(joint_slope_difference_test(table), out_joint)
    covariates = table.merge(_model_covariates(models), on="model", how="left")
    write_table(fit_sensitivity_slopes(covariates, cols), out_sensitivity)


def simulate_scaling(
    *, seed: int, reps: int, out_slopes: str, out_differences: str, out_recovery: str
) -> None:
    """The same fits on a simulated study-like panel with known slopes (34 models, 7
    families, 200 questions): shows what the machinery recovers when the panel is big.
    Recovery uses the per-condition fits, the path real data takes."""
    from safescale import scaling

    tidy, truth = scaling.simulate_panel(seed=seed)
    metrics = scaling.model_metrics(tidy)
    slopes = scaling.fit_scaling_slopes(metrics, by_condition=True)
    true = truth.slopes[["metric", "condition", "slope"]].rename(columns={"slope": "true_slope"})
    slopes = slopes.merge(true, on=["metric", "condition"], how="left")
    write_table(slopes, out_slopes)
    write_table(scaling.slope_difference_test(metrics), out_differences)
    t0 = time.perf_counter()
    recovery = scaling.parameter_recovery(reps=reps, seed=seed, by_condition=True)
    summary = recovery.summary.assign(overall_coverage=recovery.coverage)
    write_table(summary, out_recovery)
    print(
        f"parameter recovery: coverage {recovery.coverage:.3f} over {reps} panels "
        f"({time.perf_counter() - t0:.1f}s)"
    )


def safety_gate(
    *,
    labels: str,
    B: int,
    seed: int,
    target_risk: float,
    out_table: str,
    out_curves: str,
    out_signals: str,
    out_conditions: str,
) -> None:
    from safescale.analysis import gate

    tidy = answered(read_tidy(labels))
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


def case_browser(
    *,
    labels: str,
    benchmark: str,
    model: str,
    prompts: Mapping[str, str],
    predictions: Mapping[str, str],
    out_table: str,
    out_html: str,
) -> None:
    """Every high-risk and unsafe greedy error of `model` (the run's largest) with what it
    saw, as CSV and as an HTML page for the report; `prompts` and `predictions` map each
    condition to its file."""
    from safescale.analysis.cases import case_browser_html, case_table

    cases = case_table(
        tidy=read_tidy(labels),
        questions=read_canonical(benchmark),
        model=model,
        prompts=prompts,
        predictions=predictions,
    )
    write_text(cases.to_csv(index=False), out_table)
    write_text(case_browser_html(cases, model), out_html)
    print(f"{len(cases)} high-risk or unsafe greedy errors of {model}")
