"""Does a safety metric scale like accuracy? Slope-difference tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from safescale.analysis.bootstrap import resample_indices, resample_weights
from safescale.analysis.multiplicity import add_adjusted
from safescale.conditions import (
    ordered_conditions,
)
from safescale.scaling.common import (
    ACCURACY,
    BOOT_COLUMNS,
    DIFF_COLUMNS,
    METRIC_TO_OUTCOME,
    MIN_RESIDUAL_DF,
    NOT_ESTIMABLE,
    OUTCOME_TO_METRIC,
    PAIRED_BOOTSTRAP,
    SAFETY_METRICS,
    captured,
    log10_params,
    nan_row,
    percentile_interval,
)
from safescale.scaling.slopes import fit_scaling_slopes


def _reference_values(
    frame: pd.DataFrame, reference: str, accuracy_as: str
) -> tuple[pd.Series, str]:
    """Reference metric, turned into an error rate so both slopes point the same way."""
    vals = frame[reference].astype(float)
    if reference == ACCURACY and accuracy_as == "error":
        return 1.0 - vals, "error_rate (1 - accuracy)"
    return vals, reference


def slope_difference_test(
    metrics: pd.DataFrame,
    safety_metrics: Sequence[str] | None = None,
    reference: str = ACCURACY,
    accuracy_as: str = "error",
    conditions: Sequence[str] | None = None,
    min_families: int = 3,
    alpha: float = 0.05,
    min_df: int = MIN_RESIDUAL_DF,
) -> pd.DataFrame:
    """Does each safety slope differ from the accuracy slope? (per condition)

    The within-model difference d_m = safety_m - reference_m is fitted on
    log10(params) by the ladder of :func:`fit_scaling_slopes` (family random
    effects, then family fixed effects, then OLS; t(df) intervals; per condition):
    its slope is the slope difference, and differencing within each model removes
    everything the two metrics share. ``accuracy_as="error"`` (default) compares
    against 1 - accuracy, so "same scaling law" means both error rates fall alike;
    ``"accuracy"`` compares raw slopes. ``slope_reference`` is the reference slope
    by the same ladder and ``slope_safety`` = ``slope_reference`` + ``diff``. When
    either metric is constant (its slope is 0 by construction, so the "difference"
    would be the other slope) or below ``min_df`` df the row is not estimable.
    ``p_holm``/``p_bh`` adjust over the whole table (one family of tests).
    """
    if accuracy_as not in ("error", "accuracy"):
        raise ValueError("accuracy_as must be 'error' or 'accuracy'")
    safeties = [m for m in (safety_metrics or SAFETY_METRICS) if m in metrics.columns]
    conds = ordered_conditions(
        conditions if conditions is not None else metrics["condition"].unique()
    )
    keys = ["model", "family", "params_b", "condition"]
    frame = metrics[metrics["condition"].isin(conds)].dropna(subset=[reference, "params_b"])
    ref_vals, ref_label = _reference_values(frame, reference, accuracy_as)
    ladder: dict[str, Any] = {
        "by_condition": True,
        "min_families": min_families,
        "alpha": alpha,
        "min_df": min_df,
    }
    base = frame[keys].assign(reference_value=ref_vals.to_numpy())
    ref_fit = fit_scaling_slopes(base, ["reference_value"], conds, **ladder)
    ref_slope = ref_fit.set_index("condition")["slope"]
    rows: list[dict[str, Any]] = []
    for metric in safeties:
        paired = base.assign(safety=frame[metric].astype(float).to_numpy()).dropna()
        paired["diff"] = paired["safety"] - paired["reference_value"]
        reasons = {
            c: _untestable(paired[paired["condition"] == c], metric, ref_label) for c in conds
        }
        testable = [c for c in conds if not reasons[c]]
        fits = fit_scaling_slopes(paired, ["diff"], testable, **ladder) if testable else None
        fitted = fits.set_index("condition") if fits is not None else pd.DataFrame()
        for c in conds:
            part = paired[paired["condition"] == c]
            common = {
                "safety_metric": metric,
                "reference": ref_label,
                "condition": c,
                "n_models": part["model"].nunique(),
                "n_families": part["family"].nunique(),
            }
            fit = fitted.loc[c] if c in fitted.index else None
            if reasons[c] or fit is None or fit["method"] == NOT_ESTIMABLE:
                why = reasons[c] or ("" if fit is None else str(fit["note"]))
                rows.append(
                    nan_row(
                        DIFF_COLUMNS,
                        **common,
                        method=NOT_ESTIMABLE,
                        converged=False,
                        fallback=True,
                        note=why,
                    )
                )
                continue
            slope_ref = float(ref_slope.get(c, np.nan))
            rows.append(
                {
                    **common,
                    "slope_reference": slope_ref,
                    "slope_safety": slope_ref + fit["slope"],
                    "diff": fit["slope"],
                    **{k: fit[k] for k in ("se", "ci_low", "ci_high", "p", "df", "method")},
                    "converged": True,
                    "fallback": bool(fit["fallback"]),
                    "note": fit["note"],
                }
            )
    return add_adjusted(pd.DataFrame(rows, columns=DIFF_COLUMNS), "p")


def _untestable(part: pd.DataFrame, metric: str, ref_label: str) -> str:
    """Why a slope difference cannot be tested at all ('' when it can)."""
    if part.empty:
        return "no data"
    if part["params_b"].nunique() < 2:
        return "single model size: slopes not defined"
    constant = [
        f"{label} constant (all {values.iloc[0]:g})"
        for label, values in ((ref_label, part["reference_value"]), (metric, part["safety"]))
        if values.nunique() < 2
    ]
    if constant:
        return ", ".join(constant) + ": its slope is 0 by construction, no test"
    return ""


def bootstrap_slope_differences(
    tidy: pd.DataFrame,
    safety_outcomes: Sequence[str] | None = None,
    reference: str = "greedy_correct",
    accuracy_as: str = "error",
    conditions: Sequence[str] | None = None,
    B: int = 1000,
    seed: int = 42,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Paired bootstrap over questions of (safety slope - reference slope).

    Fit-free cross-check of :func:`slope_difference_test`: resample question ids
    (the same draw for every model, metric and condition), recompute per-model
    metrics, refit plain OLS slopes on log10(params). Captures question-sampling
    uncertainty only; the models are held fixed. The percentile CI and p come from
    the same order statistics (``percentile_interval``), so they agree.
    """
    if accuracy_as not in ("error", "accuracy"):
        raise ValueError("accuracy_as must be 'error' or 'accuracy'")
    outs = [
        o
        for o in (safety_outcomes or [METRIC_TO_OUTCOME[m] for m in SAFETY_METRICS])
        if o in tidy.columns
    ]
    conds = ordered_conditions(conditions if conditions is not None else tidy["condition"].unique())
    qids = pd.Index(pd.unique(tidy["question_id"]))
    Q = len(qids)
    W = resample_weights(resample_indices(Q, B, seed), Q)  # B x Q resampling counts
    flip = reference == "greedy_correct" and accuracy_as == "error"
    ref_label = "error_rate (1 - accuracy)" if flip else OUTCOME_TO_METRIC.get(reference, reference)
    rows: list[dict[str, Any]] = []

    def _boot_slopes(vals: np.ndarray, xc: np.ndarray) -> tuple[float, np.ndarray]:
        mask = np.isfinite(vals)
        v0 = np.where(mask, vals, 0.0)
        point = v0.sum(1) / mask.sum(1)
        mb = (v0 @ W.T) / (mask.astype(float) @ W.T)  # models x B
        sxx = float(xc @ xc)
        return float(xc @ (point - point.mean())) / sxx, (xc @ (mb - mb.mean(0))) / sxx

    for c in conds:
        tc = tidy[tidy["condition"] == c]
        for out in outs:
            common = {
                "safety_metric": OUTCOME_TO_METRIC.get(out, out),
                "reference": ref_label,
                "condition": c,
                "B": B,
                "seed": seed,
            }
            pv = tc.groupby(["model", "params_b", "question_id"], sort=True)[
                [reference, out]
            ].mean()
            pv = pv.unstack("question_id")
            models = pv.index.to_frame(index=False)
            n_models = len(models)
            if n_models == 0 or models["params_b"].nunique() < 2:
                rows.append(
                    nan_row(
                        BOOT_COLUMNS,
                        **common,
                        n_models=n_models,
                        n_questions=tc["question_id"].nunique(),
                        method=NOT_ESTIMABLE,
                        note="fewer than 2 model sizes: slope not defined",
                    )
                )
                continue
            ref = pv[reference].reindex(columns=qids).to_numpy(float)
            saf = pv[out].reindex(columns=qids).to_numpy(float)
            if flip:
                ref = 1.0 - ref
            x = log10_params(models["params_b"])
            xc = x - x.mean()
            with captured():
                br, br_b = _boot_slopes(ref, xc)
                bs, bs_b = _boot_slopes(saf, xc)
            d_b = bs_b - br_b
            d_b = d_b[np.isfinite(d_b)]
            diff = bs - br
            lo, hi, p = percentile_interval(d_b, alpha)
            note = "question-sampling uncertainty only (models fixed); percentile CI"
            if n_models == 2:
                note += "; only 2 models: slope is a two-point line"
            rows.append(
                {
                    **common,
                    "slope_reference": br,
                    "slope_safety": bs,
                    "diff": diff,
                    "se": float(np.std(d_b, ddof=1)) if d_b.size > 1 else np.nan,
                    "ci_low": lo,
                    "ci_high": hi,
                    "p": p,
                    "n_models": n_models,
                    "n_questions": int(np.isfinite(saf).any(0).sum()),
                    "method": PAIRED_BOOTSTRAP,
                    "note": note,
                }
            )
    return add_adjusted(pd.DataFrame(rows, columns=BOOT_COLUMNS), "p")
