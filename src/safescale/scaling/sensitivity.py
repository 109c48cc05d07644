"""Robustness of the model-level slopes: a logit-scale (quasi-binomial) fit next to
the linear one, each with the covariates the panel varies (quantization, base vs
instruct, coder vs general: any such column of the metrics table)."""

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
    nan_row,
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


def _covariate_block(d: pd.DataFrame, covariates: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Dummy-coded covariates that vary across the models of ``d`` (others are dropped)."""
    blocks, used = [], []
    for col in covariates:
        if col not in d.columns or d[col].nunique(dropna=False) < 2:
            continue
        values = d[col].astype(str).to_numpy()
        codes, levels = pd.factorize(values, sort=True)
        blocks.append(np.eye(len(levels))[codes][:, 1:])
        used.append(col)
    return (np.hstack(blocks) if blocks else np.empty((len(d), 0))), used


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
    with n_questions trials, Pearson-scaled variance for between-model spread) and,
    when covariates vary, the linear slope adjusted for them. Both with t(df) CIs;
    ``slope_probability`` puts the logit slope on the probability scale (average
    marginal effect) so it reads against the linear fits. Needs ``n_questions``.
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
            x = log10_params(d["params_b"])
            cov, used = _covariate_block(d, covariates)
            X = np.column_stack([np.ones(len(d)), x - x.mean(), cov])
            fam, fam_note = _family_block(d, len(d) - X.shape[1], min_df)
            X = np.column_stack([X, fam])
            df = len(d) - X.shape[1]
            base = {
                "metric": metric,
                "condition": c,
                "covariates": ", ".join(used),
                "n_models": len(d),
            }
            why = ""
            if d["params_b"].nunique() < 2:
                why = "single model size"
            elif d[metric].nunique() < 2:
                why = f"{metric} constant: slope 0 by construction"
            elif df < min_df:
                why = f"{len(d)} models, {df} residual df (< {min_df})"
            elif np.linalg.matrix_rank(X) < X.shape[1]:
                why = "covariates confounded with size: rank deficient"
            if why:
                rows.append(
                    nan_row(
                        SENSITIVITY_COLUMNS, **base, scale="logit", method=NOT_ESTIMABLE, note=why
                    )
                )
                continue
            y = d[metric].to_numpy(float)
            logit = _logit_slope(y, X, d["n_questions"], df, alpha)
            rows.append({**base, **logit, "note": join_notes(fam_note, logit["note"])})
            if used:
                with captured():
                    res = sm.OLS(y, X).fit()
                b, se = float(res.params[1]), float(res.bse[1])
                rows.append(
                    {
                        **base,
                        "scale": "probability",
                        **t_estimate(b, se, df, alpha),
                        "slope_probability": b,
                        "method": OLS_COVARIATES,
                        "note": fam_note,
                    }
                )
    return pd.DataFrame(rows, columns=SENSITIVITY_COLUMNS)


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
