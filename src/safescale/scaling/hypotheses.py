"""The study's claims as tests: "evidence matters more than scale" (does the scale
slope differ by condition?) and "safety scales unlike accuracy" (do the safety
slopes differ from the error-rate slope, jointly over the safety metrics?).

Both are exact small-sample tests under their linear models (F with the df
printed), and their size under simulated nulls is reported by the calibration
script (docs/SCALING.md). Adjusted p-values (Holm, BH) are over each table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from safescale.analysis.multiplicity import add_adjusted
from safescale.conditions import ordered_conditions
from safescale.scaling.cluster import (
    MIN_CLUSTERS,
    clustered_wls,
    cr2_contrast,
    wild_cluster_wald,
)
from safescale.scaling.common import (
    ACCURACY,
    ALL_METRICS,
    MIN_RESIDUAL_DF,
    NOT_ESTIMABLE,
    SAFETY_METRICS,
    join_notes,
    log10_params,
    nan_row,
    t_interval,
)

OLS_MODEL_FIXED = "ols_model_fixed_fgls"
HOTELLING_PAIRED = "hotelling_paired_difference"

INTERACTION_COLUMNS: list[str] = [
    "metric",
    "term",
    "condition",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "statistic",
    "df_num",
    "df_den",
    "p",
    "p_holm",
    "p_bh",
    "p_unclustered",
    "B",
    "n_models",
    "n_families",
    "n_conditions",
    "method",
    "note",
]
JOINT_COLUMNS: list[str] = [
    "condition",
    "reference",
    "safety_metrics",
    "statistic",
    "df_num",
    "df_den",
    "p",
    "p_holm",
    "p_bh",
    "n_models",
    "method",
    "note",
]


def _fe_fit(
    y: np.ndarray, X: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Weighted least squares: coefficients, (X'WX)^-1, residual SS and df."""
    Xw = X * np.sqrt(w)[:, None]
    yw = y * np.sqrt(w)
    beta, *_ = np.linalg.lstsq(Xw, yw, rcond=None)
    rank = np.linalg.matrix_rank(Xw)
    resid = yw - Xw @ beta
    return beta, np.linalg.pinv(Xw.T @ Xw), float(resid @ resid), len(y) - rank


def scale_condition_interaction(
    metrics: pd.DataFrame,
    metric_cols: Sequence[str] | None = None,
    conditions: Sequence[str] | None = None,
    alpha: float = 0.05,
    min_df: int = MIN_RESIDUAL_DF,
    B: int = 999,
    seed: int = 0,
) -> pd.DataFrame:
    """Does the slope on log10(params) differ between conditions? One joint test per metric.

    ``y_mc = a_m + g_c + (b_c - b_ref) x_m + e_mc`` over the models seen in every
    condition: model fixed effects absorb each model's level (and the common slope),
    so only how a model's metric moves between conditions is used. Residual variance
    is estimated per condition (one FGLS step) because ceiling conditions vary less.
    Inference is clustered by family (a family's slope can shift differently in each
    condition, so its models' deviations are correlated): the joint row's p is a
    wild cluster bootstrap of the CR2 Wald statistic (``B`` draws, ``seed``), with
    ``MIN_CLUSTERS`` families needed; each condition's slope difference from the
    reference gets a CR2 SE and a t interval on Bell-McCaffrey df. ``p_unclustered``
    keeps the plain F / t p that treats models as independent (liberal with few
    families). Conditions where the metric is constant are left out (noted).
    """
    cols = [m for m in (metric_cols or ALL_METRICS) if m in metrics.columns]
    rows: list[dict[str, Any]] = []
    for metric in cols:
        rows += _interaction_rows(metrics, metric, conditions, alpha, min_df, B, seed)
    table = pd.DataFrame(rows, columns=INTERACTION_COLUMNS)
    joint = table["term"] == "all conditions"
    # Two families of tests: the joint tests (one per metric), and each metric's
    # per-condition contrasts.
    parts = [add_adjusted(table[joint], "p")]
    parts += [add_adjusted(part, "p") for _, part in table[~joint].groupby("metric", sort=False)]
    return pd.concat(parts).sort_index()[INTERACTION_COLUMNS]


def _interaction_rows(
    metrics: pd.DataFrame,
    metric: str,
    conditions: Sequence[str] | None,
    alpha: float,
    min_df: int,
    B: int,
    seed: int,
) -> list[dict[str, Any]]:
    """The joint row and the per-condition contrast rows of one metric."""
    d = metrics.dropna(subset=[metric, "params_b"])
    if conditions is not None:
        d = d[d["condition"].isin(list(conditions))]
    notes = []
    constant = sorted(c for c, v in d.groupby("condition")[metric] if v.nunique() < 2)
    if constant:
        notes.append("left out, metric constant: " + ", ".join(constant))
        d = d[~d["condition"].isin(constant)]
    conds = ordered_conditions(d["condition"].unique())
    wide = d.pivot_table(index=["model", "family", "params_b"], columns="condition", values=metric)
    wide = wide.reindex(columns=conds).dropna()
    n_models, n_conds = len(wide), len(conds)
    n_families = wide.index.get_level_values("family").nunique()
    df_den = (n_models - 2) * (n_conds - 1)
    base = {
        "metric": metric,
        "n_models": n_models,
        "n_families": n_families,
        "n_conditions": n_conds,
    }
    why = ""
    if n_conds < 2:
        why = "fewer than 2 conditions with a varying metric"
    elif wide.index.get_level_values("params_b").nunique() < 2:
        why = "single model size among the models seen in every condition"
    elif df_den < min_df:
        why = f"{n_models} models x {n_conds} conditions: {df_den} residual df (< {min_df})"
    if why:
        note = join_notes(*notes, why)
        return [
            nan_row(
                INTERACTION_COLUMNS,
                **base,
                term="all conditions",
                condition="",
                method=NOT_ESTIMABLE,
                note=note,
            )
        ]
    x = log10_params(wide.index.get_level_values("params_b"))
    xc = x - x.mean()
    y = wide.to_numpy(float).T.ravel()  # condition-major: conds x models
    model_fe = np.tile(np.eye(n_models), (n_conds, 1))
    cond_ind = np.kron(np.eye(n_conds)[:, 1:], np.ones((n_models, 1)))
    slopes = cond_ind * np.tile(xc, n_conds)[:, None]
    X_full = np.hstack([model_fe, cond_ind, slopes])
    X_null = np.hstack([model_fe, cond_ind])
    cond_of_row = np.repeat(np.arange(n_conds), n_models)
    beta0, _, _, _ = _fe_fit(y, X_full, np.ones_like(y))
    resid = y - X_full @ beta0
    var_c = np.array(
        [resid[cond_of_row == k] @ resid[cond_of_row == k] for k in range(n_conds)]
    ) / (df_den / n_conds)
    var_c = np.maximum(var_c, 1e-12 * max(var_c.max(), 1e-300))
    w = 1.0 / var_c[cond_of_row]
    _, cov_unscaled, ssr_full, df_res = _fe_fit(y, X_full, w)
    _, _, ssr_null, _ = _fe_fit(y, X_null, w)
    q = n_conds - 1
    sigma2 = ssr_full / df_res
    f_stat = ((ssr_null - ssr_full) / q) / sigma2
    p_plain = float(stats.f.sf(f_stat, q, df_res))
    family = np.tile(wide.index.get_level_values("family").to_numpy(), n_conds)
    fit = clustered_wls(y, X_full, w, family)
    k0 = n_models + q
    tested = np.arange(k0, k0 + q)
    plain = f"plain F {f_stat:.3g} on ({q}, {df_res}) df, p {p_plain:.3g}"
    method_note = join_notes(
        *notes, "model fixed effects; residual variance per condition (one FGLS step)"
    )
    joint: dict[str, Any] = {
        **base,
        "term": "all conditions",
        "condition": "",
        "df_num": q,
        "p_unclustered": p_plain,
    }
    if n_families < MIN_CLUSTERS:
        why = (
            f"{n_families} families: a family-clustered joint test needs >= {MIN_CLUSTERS}"
            f" ({plain}, which treats models as independent)"
        )
        out = [
            nan_row(
                INTERACTION_COLUMNS, **joint, method=NOT_ESTIMABLE, note=join_notes(*notes, why)
            )
        ]
    else:
        wald, p = wild_cluster_wald(fit, tested, B=B, seed=seed)
        note = join_notes(method_note, f"family-clustered: CR2 Wald, wild bootstrap ({plain})")
        out = [
            {**joint, "statistic": wald, "p": p, "B": B, "method": OLS_MODEL_FIXED, "note": note}
        ]
    for j, c in enumerate(conds[1:]):
        contrast = np.zeros(X_full.shape[1])
        contrast[k0 + j] = 1.0
        est, se, df_bm = cr2_contrast(fit, contrast)
        se_plain = float(np.sqrt(sigma2 * cov_unscaled[k0 + j, k0 + j]))
        p_t = float(2 * stats.t.sf(abs(est / se_plain), df_res)) if se_plain > 0 else np.nan
        term = {
            **base,
            "term": f"slope[{c}] - slope[{conds[0]}]",
            "condition": c,
            "df_num": 1,
            "p_unclustered": p_t,
        }
        if not (np.isfinite(df_bm) and df_bm >= min_df and se > 0):
            why = f"family-clustered SE rests on {df_bm:.2g} df (< {min_df})"
            out.append(
                nan_row(
                    INTERACTION_COLUMNS,
                    **term,
                    estimate=est,
                    method=NOT_ESTIMABLE,
                    note=join_notes(*notes, why),
                )
            )
            continue
        lo, hi, p_c = t_interval(est, se, df_bm, alpha)
        out.append(
            {
                **term,
                "estimate": est,
                "se": se,
                "ci_low": lo,
                "ci_high": hi,
                "statistic": est / se,
                "df_den": df_bm,
                "p": p_c,
                "method": OLS_MODEL_FIXED,
                "note": join_notes(method_note, "family-clustered: CR2 SE, Bell-McCaffrey df"),
            }
        )
    return out


def _family_effects(d: pd.DataFrame, k: int, min_df: int) -> np.ndarray | None:
    """Family dummies when some family has two sizes and the df allow; else None."""
    n_extra = d["family"].nunique() - 1
    if n_extra < 1 or not (d.groupby("family")["params_b"].nunique() >= 2).any():
        return None
    if len(d) - 2 - n_extra - k + 1 < min_df:
        return None
    codes, levels = pd.factorize(d["family"].to_numpy(), sort=True)
    return np.eye(len(levels))[codes][:, 1:]


def joint_slope_difference_test(
    metrics: pd.DataFrame,
    safety_metrics: Sequence[str] | None = None,
    reference: str = ACCURACY,
    accuracy_as: str = "error",
    conditions: Sequence[str] | None = None,
    min_df: int = MIN_RESIDUAL_DF,
) -> pd.DataFrame:
    """Do the safety slopes differ from the reference slope, jointly? One test per condition.

    Per model the K differences d_mk = safety_k - reference are regressed on
    log10(params) (with family fixed effects where some family has two sizes, so
    family levels cannot pass for size); Hotelling's T^2 tests that all K slopes
    are 0, allowing any correlation between the metrics: F = (v - K + 1) / (v K) T^2
    on (K, v - K + 1) df, v the residual df. Metrics constant in the condition are
    left out (their slope is 0 by construction).
    """
    if accuracy_as not in ("error", "accuracy"):
        raise ValueError("accuracy_as must be 'error' or 'accuracy'")
    flip = reference == ACCURACY and accuracy_as == "error"
    ref_label = "error_rate (1 - accuracy)" if flip else reference
    safeties = [m for m in (safety_metrics or SAFETY_METRICS) if m in metrics.columns]
    conds = ordered_conditions(
        conditions if conditions is not None else metrics["condition"].unique()
    )
    rows: list[dict[str, Any]] = []
    for c in conds:
        d = metrics[metrics["condition"] == c].dropna(subset=[reference, "params_b", *safeties])
        ref = 1.0 - d[reference].astype(float) if flip else d[reference].astype(float)
        used = [m for m in safeties if d[m].nunique() > 1]
        notes = []
        if len(used) < len(safeties):
            notes.append("left out, constant: " + ", ".join(sorted(set(safeties) - set(used))))
        n_models, k = len(d), len(used)
        family = _family_effects(d, k, min_df)
        if family is None:
            notes.append("families ignored (no family has two sizes, or too few df)")
            family = np.empty((n_models, 0))
        else:
            notes.append("family fixed effects (within-family slopes)")
        v = n_models - 2 - family.shape[1]
        base: dict[str, Any] = {
            "condition": c,
            "reference": ref_label,
            "safety_metrics": ", ".join(used),
            "n_models": n_models,
        }
        why = ""
        if ref.nunique() < 2:
            why = f"{ref_label} constant: its slope is 0 by construction"
        elif k == 0:
            why = "no safety metric varies"
        elif d["params_b"].nunique() < 2:
            why = "single model size"
        elif v - k + 1 < min_df:
            why = f"{n_models} models for {k} metrics: {v - k + 1} denominator df (< {min_df})"
        if why:
            rows.append(
                nan_row(JOINT_COLUMNS, **base, method=NOT_ESTIMABLE, note=join_notes(*notes, why))
            )
            continue
        x = log10_params(d["params_b"])
        X = np.column_stack([np.ones(n_models), x - x.mean(), family])
        D = d[used].to_numpy(float) - ref.to_numpy(float)[:, None]
        coef, *_ = np.linalg.lstsq(X, D, rcond=None)
        resid = D - X @ coef
        S = resid.T @ resid / v
        c11 = float(np.linalg.pinv(X.T @ X)[1, 1])  # variance factor of the slope
        b = coef[1]
        t2 = float(b @ np.linalg.pinv(S) @ b) / c11
        f_stat = (v - k + 1) / (v * k) * t2
        rows.append(
            {
                **base,
                "statistic": f_stat,
                "df_num": k,
                "df_den": v - k + 1,
                "p": float(stats.f.sf(f_stat, k, v - k + 1)),
                "method": HOTELLING_PAIRED,
                "note": join_notes(*notes),
            }
        )
    return add_adjusted(pd.DataFrame(rows, columns=JOINT_COLUMNS), "p")
