"""Does a safety metric scale like accuracy? Slope-difference tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.regression.mixed_linear_model import MixedLM, VCSpec

from safescale.analysis.bootstrap import resample_indices, resample_weights
from safescale.analysis.multiplicity import add_adjusted
from safescale.conditions import (
    ordered_conditions,
)
from safescale.scaling.common import (
    ACCURACY,
    BOOT_COLUMNS,
    BOUNDARY_TOL,
    DIFF_COLUMNS,
    METRIC_TO_OUTCOME,
    MIN_RESIDUAL_DF,
    MIXEDLM_STACKED,
    NOT_ESTIMABLE,
    OLS_PAIRED,
    OUTCOME_TO_METRIC,
    PAIRED_BOOTSTRAP,
    SAFETY_METRICS,
    captured,
    fit_mixedlm,
    join_notes,
    log10_params,
    mixed_gate,
    mixedlm_problems,
    nan_row,
    ols_fit,
    panel_info,
    percentile_interval,
    standardise,
    t_interval,
)


def _reference_values(
    frame: pd.DataFrame, reference: str, accuracy_as: str
) -> tuple[pd.Series, str]:
    """Reference metric, turned into an error rate so both slopes point the same way."""
    vals = frame[reference].astype(float)
    if reference == ACCURACY and accuracy_as == "error":
        return 1.0 - vals, "error_rate (1 - accuracy)"
    return vals, reference


def _try_stacked(d: pd.DataFrame) -> tuple[tuple[float, ...] | None, str]:
    """Stacked MixedLM: value ~ metric * x, family random intercept, model pairing VC."""
    d = d.sort_values(["family", "model", "is_safety"], kind="stable")
    ys, _, sd = standardise(d["value"].to_numpy(float))
    x = d["x"].to_numpy(float)
    xc = x - x.mean()
    s = d["is_safety"].to_numpy(float)
    exog = np.column_stack([np.ones_like(xc), s, xc, s * xc])
    fams = d["family"].to_numpy()
    labels = sorted(pd.unique(fams))
    names, mats = [], []
    for g in labels:
        sub = d.loc[fams == g, "model"].to_numpy()
        models = list(dict.fromkeys(sub))
        names.append([str(m) for m in models])
        mats.append(np.column_stack([(sub == m).astype(float) for m in models]))
    vc = VCSpec(["model"], [names], [mats])
    mod = MixedLM(ys, exog, groups=fams, exog_re=np.ones((len(xc), 1)), exog_vc=vc)
    res, msgs, opt_note = fit_mixedlm(mod)
    if res is None:
        return None, f"{MIXEDLM_STACKED}: {opt_note}"
    probs = mixedlm_problems(res, msgs, [2, 3])
    var_fam = float(np.asarray(res.cov_re)[0, 0])
    var_model = float(np.asarray(res.vcomp)[0])
    if not var_fam >= BOUNDARY_TOL:
        probs.append("family intercept variance on the boundary (~0)")
    if not var_model >= BOUNDARY_TOL:
        probs.append("model (pairing) variance on the boundary (~0)")
    if probs:
        return None, f"{MIXEDLM_STACKED}: " + ", ".join(dict.fromkeys(probs))
    fe, bse = np.asarray(res.fe_params), np.asarray(res.bse_fe)
    return (fe[2] * sd, (fe[2] + fe[3]) * sd, fe[3] * sd, bse[3] * sd), ""


def slope_difference_test(
    metrics: pd.DataFrame,
    safety_metrics: Sequence[str] | None = None,
    reference: str = ACCURACY,
    accuracy_as: str = "error",
    conditions: Sequence[str] | None = None,
    tidy: pd.DataFrame | None = None,
    min_families: int = 3,
    alpha: float = 0.05,
    min_df: int = MIN_RESIDUAL_DF,
) -> pd.DataFrame:
    """Does each safety slope differ from the accuracy slope? (per condition)

    Stacks reference and safety metric (long format, two rows per model) and fits
    ``value ~ metric * log10(params)`` with family random intercept and a model
    variance component that pairs each model's two rows; the interaction is the
    slope difference. ``accuracy_as="error"`` (default) compares against the slope
    of 1 - accuracy, so "same scaling law" means both error rates fall alike;
    ``"accuracy"`` compares raw slopes. Fallback: OLS of the within-model difference.
    CI and p come from t(n_models - 2) (``df``); below ``min_df`` df, or when either
    metric is constant (its slope is 0 by construction, so the "difference" would be
    the other slope), the row is not estimable. ``p_holm``/``p_bh`` adjust over the
    whole table (one family of tests). ``tidy`` is accepted and ignored: a
    question-clustered difference treats the models as fixed.
    """
    del tidy
    if accuracy_as not in ("error", "accuracy"):
        raise ValueError("accuracy_as must be 'error' or 'accuracy'")
    safeties = [m for m in (safety_metrics or SAFETY_METRICS) if m in metrics.columns]
    conds = ordered_conditions(
        conditions if conditions is not None else metrics["condition"].unique()
    )
    rows: list[dict[str, Any]] = []
    for metric in safeties:
        for c in conds:
            frame = metrics[metrics["condition"] == c].dropna(subset=[metric, reference])
            ref_vals, ref_label = _reference_values(frame, reference, accuracy_as)
            paired = frame[["model", "family", "params_b"]].assign(
                ref=ref_vals.to_numpy(), saf=frame[metric].astype(float).to_numpy()
            )
            paired["x"] = log10_params(paired["params_b"])
            info = panel_info(paired) if not paired.empty else None
            common = {
                "safety_metric": metric,
                "reference": ref_label,
                "condition": c,
                "n_models": info["n_models"] if info else 0,
                "n_families": info["n_families"] if info else 0,
            }
            df = (info["n_models"] - 2) if info else 0
            reasons = _untestable(paired, info, metric, ref_label, df, min_df)
            out: tuple[float, ...] | None = None
            method = MIXEDLM_STACKED
            if not reasons:
                assert info is not None
                gate = mixed_gate(info, min_families)
                if gate:
                    reasons.append(f"{MIXEDLM_STACKED} skipped: {gate}")
                else:
                    long = pd.concat(
                        [
                            paired.assign(value=paired["ref"], is_safety=0),
                            paired.assign(value=paired["saf"], is_safety=1),
                        ],
                        ignore_index=True,
                    )
                    out, why = _try_stacked(long)
                    if why:
                        reasons.append(why)
                if out is None:
                    out, why = _paired_ols(paired)
                    method = OLS_PAIRED
                    if why:
                        reasons.append(why)
            if out is None:
                rows.append(
                    nan_row(
                        DIFF_COLUMNS,
                        **common,
                        method=NOT_ESTIMABLE,
                        converged=False,
                        fallback=True,
                        note=join_notes(*reasons),
                    )
                )
                continue
            br, bs, diff, se = out
            lo, hi, p = t_interval(diff, se, df, alpha)
            rows.append(
                {
                    **common,
                    "slope_reference": br,
                    "slope_safety": bs,
                    "diff": diff,
                    "se": se,
                    "ci_low": lo,
                    "ci_high": hi,
                    "p": p,
                    "df": df,
                    "method": method,
                    "converged": True,
                    "fallback": method != MIXEDLM_STACKED,
                    "note": join_notes(*reasons),
                }
            )
    return add_adjusted(pd.DataFrame(rows, columns=DIFF_COLUMNS), "p")


def _untestable(
    paired: pd.DataFrame,
    info: dict[str, int] | None,
    metric: str,
    ref_label: str,
    df: int,
    min_df: int,
) -> list[str]:
    """Reasons a slope difference cannot be tested at all (empty when it can)."""
    if info is None:
        return ["no data"]
    if info["n_sizes"] < 2:
        return ["single model size: slopes not defined"]
    constant = [
        f"{label} constant (all {values.iloc[0]:g})"
        for label, values in ((ref_label, paired["ref"]), (metric, paired["saf"]))
        if values.nunique() < 2
    ]
    if constant:
        return [", ".join(constant) + ": its slope is 0 by construction, no test"]
    if df < min_df:
        return [f"{info['n_models']} models, {df} residual df (< {min_df}): no test supported"]
    return []


def _paired_ols(paired: pd.DataFrame) -> tuple[tuple[float, ...] | None, str]:
    """OLS of the within-model difference on x (the stacked model with model fixed effects)."""
    xc = paired["x"].to_numpy() - paired["x"].mean()
    X = np.column_stack([np.ones(len(xc)), xc])
    dvals = (paired["saf"] - paired["ref"]).to_numpy(float)
    b, se, _, _ = ols_fit(dvals, X, 1)
    if not (np.isfinite(se) and se > 0):
        return None, f"{OLS_PAIRED}: zero/NaN SE"
    br = ols_fit(paired["ref"].to_numpy(float), X, 1)[0]
    return (br, br + b, b, se), ""


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
