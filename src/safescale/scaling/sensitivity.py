"""Robustness of the model-level slopes: a logit-scale (quasi-binomial) fit next to
the linear one, and both adjusted for the covariates the panel varies (quantization,
base vs instruct, coder vs general: columns of the metrics table, which the pipeline
takes from the model registry via the fetch step's manifests)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm

from safescale.conditions import ordered_conditions
from safescale.scaling.common import (
    ALL_METRICS,
    MIN_RESIDUAL_DF,
    NOT_ESTIMABLE,
    OUTCOME_TO_METRIC,
    captured,
    join_notes,
    log10_params,
    t_estimate,
)

#: metrics-table columns used as covariates when present and varying across models.
COVARIATES: tuple[str, ...] = ("quantization", "instruct", "coder")
GLM_LOGIT = "glm_logit_quasibinomial"
OLS_COVARIATES = "ols_covariates"

SENSITIVITY_COLUMNS: list[str] = [
    "metric",
    "condition",
    "scale",
    "slope",
    "se",
    "ci_low",
    "ci_high",
    "p",
    "df",
    "slope_probability",
    "covariates",
    "n_models",
    "method",
    "note",
]


def _covariate_block(
    d: pd.DataFrame, covariates: Sequence[str]
) -> tuple[np.ndarray, list[str], list[str]]:
    """Dummy-coded covariates recorded for every model of ``d`` and varying across them;
    also a note per covariate left out, saying why (not recorded / not varied)."""
    blocks, used, skipped = [], [], []
    for col in covariates:
        values = d[col] if col in d.columns else pd.Series(np.nan, index=d.index)
        missing = int(values.isna().sum())
        if missing == len(d):
            skipped.append(f"{col} not recorded")
        elif missing:
            skipped.append(f"{col} not recorded for {missing} of {len(d)} models")
        elif values.nunique() < 2:
            skipped.append(f"{col} not varied in this panel (all {values.iloc[0]})")
        else:
            codes, levels = pd.factorize(values.astype(str).to_numpy(), sort=True)
            blocks.append(np.eye(len(levels))[codes][:, 1:])
            used.append(col)
    block = np.hstack(blocks) if blocks else np.empty((len(d), 0))
    return block, used, skipped


def _family_block(d: pd.DataFrame, df_left: int, min_df: int) -> tuple[np.ndarray, str]:
    """Family fixed effects when some family has two sizes and the df allow it: models
    of one family share more than size, and ignoring that makes SEs too small."""
    models_per_family = d.groupby("family")["params_b"].nunique()
    n_extra = d["family"].nunique() - 1
    if n_extra < 1 or not (models_per_family >= 2).any():
        return np.empty((len(d), 0)), "families ignored: no family has two sizes"
    if df_left - n_extra < min_df:
        return np.empty((len(d), 0)), f"families ignored: {df_left - n_extra} df with them"
    codes, levels = pd.factorize(d["family"].to_numpy(), sort=True)
    return np.eye(len(levels))[codes][:, 1:], "family fixed effects (within-family slope)"


def fit_sensitivity_slopes(
    metrics: pd.DataFrame,
    metric_cols: Sequence[str] | None = None,
    conditions: Sequence[str] | None = None,
    covariates: Sequence[str] = COVARIATES,
    alpha: float = 0.05,
    min_df: int = MIN_RESIDUAL_DF,
) -> pd.DataFrame:
    """Per (metric, condition): the slope on the logit scale (Binomial GLM of the rate
    with n_questions trials, Pearson-scaled variance for between-model spread), and,
    where the panel varies a covariate, the logit and linear slopes adjusted for the
    covariates. All with t(df) CIs; ``slope_probability`` puts a logit slope on the
    probability scale (average marginal effect) to read against the linear fits. The
    unadjusted row's note names each covariate left out and why. Needs ``n_questions``.
    """
    rate_metrics = set(OUTCOME_TO_METRIC.values())
    wanted = metric_cols or ALL_METRICS
    cols = [m for m in wanted if m in metrics.columns and m in rate_metrics]
    conds = ordered_conditions(
        conditions if conditions is not None else metrics["condition"].unique()
    )
    rows: list[dict[str, Any]] = []
    for metric in cols:
        for c in conds:
            d = metrics[metrics["condition"] == c].dropna(subset=[metric, "params_b"])
            cov, used, skipped = _covariate_block(d, covariates)
            base = {"metric": metric, "condition": c, "n_models": len(d)}
            why = ""
            if d["params_b"].nunique() < 2:
                why = "single model size"
            elif d[metric].nunique() < 2:
                why = f"{metric} constant: slope 0 by construction"
            plain = _fit_rows(d, metric, np.empty((len(d), 0)), why, alpha, min_df, logit_only=True)
            plain[0]["note"] = join_notes(plain[0]["note"], *skipped)
            rows += [{**base, "covariates": "", **r} for r in plain]
            if used:
                adjusted = _fit_rows(d, metric, cov, why, alpha, min_df, logit_only=False)
                rows += [{**base, "covariates": ", ".join(used), **r} for r in adjusted]
    return pd.DataFrame(rows, columns=SENSITIVITY_COLUMNS)


def _fit_rows(
    d: pd.DataFrame,
    metric: str,
    cov: np.ndarray,
    why: str,
    alpha: float,
    min_df: int,
    logit_only: bool,
) -> list[dict[str, Any]]:
    """The logit row (and, with covariates, the linear OLS row) of one (metric, condition)."""
    x = log10_params(d["params_b"])
    X = np.column_stack([np.ones(len(d)), x - x.mean(), cov])
    fam, fam_note = _family_block(d, len(d) - X.shape[1], min_df)
    X = np.column_stack([X, fam])
    df = len(d) - X.shape[1]
    if not why and df < min_df:
        why = f"{len(d)} models, {df} residual df (< {min_df})"
    elif not why and np.linalg.matrix_rank(X) < X.shape[1]:
        why = "covariates confounded with size or family: rank deficient"
    scales = ["logit"] if logit_only else ["logit", "probability"]
    if why:
        # other columns are left missing: the table is built with SENSITIVITY_COLUMNS
        return [{"scale": sc, "method": NOT_ESTIMABLE, "note": why} for sc in scales]
    y = d[metric].to_numpy(float)
    logit = _logit_slope(y, X, d["n_questions"], df, alpha)
    out = [{**logit, "note": join_notes(fam_note, logit["note"])}]
    if not logit_only:
        with captured():
            res = sm.OLS(y, X).fit()
        b, se = float(res.params[1]), float(res.bse[1])
        out.append(
            {
                "scale": "probability",
                **t_estimate(b, se, df, alpha),
                "slope_probability": b,
                "method": OLS_COVARIATES,
                "note": fam_note,
            }
        )
    return out


def _logit_slope(
    y: np.ndarray, X: np.ndarray, trials: pd.Series, df: int, alpha: float
) -> dict[str, Any]:
    """Quasi-binomial logit slope (column 1) with its t interval and marginal effect."""
    with captured() as msgs:
        try:
            res = sm.GLM(
                y, X, family=sm.families.Binomial(), var_weights=trials.to_numpy(float)
            ).fit(scale="X2")
        except (np.linalg.LinAlgError, ValueError) as exc:
            return {"scale": "logit", "method": NOT_ESTIMABLE, "note": f"GLM failed: {exc}"}
    b, se = float(res.params[1]), float(res.bse[1])
    if not (np.isfinite(b) and np.isfinite(se) and se > 0):
        note = join_notes("GLM gave NaN or zero SE", *msgs)
        return {"scale": "logit", "method": NOT_ESTIMABLE, "note": note}
    mu = np.asarray(res.fittedvalues, float)
    return {
        "scale": "logit",
        **t_estimate(b, se, df, alpha),
        "slope_probability": b * float(np.mean(mu * (1 - mu))),
        "method": GLM_LOGIT,
        "note": join_notes("variance scaled by Pearson chi2 / df", *msgs),
    }
