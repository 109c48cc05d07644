"""Model-level slopes of each metric on log10(parameters), with a fallback ladder."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.regression.mixed_linear_model import MixedLM

from safescale.analysis.multiplicity import add_adjusted
from safescale.conditions import (
    ordered_conditions,
)
from safescale.scaling.common import (
    ALL_METRICS,
    BOUNDARY_TOL,
    MIN_RESIDUAL_DF,
    NOT_ESTIMABLE,
    OLS,
    OLS_FAMILY_FIXED,
    RANDOM_INTERCEPT,
    RANDOM_SLOPE,
    SLOPE_COLUMNS,
    fit_mixedlm,
    join_notes,
    log10_params,
    mixed_gate,
    mixedlm_problems,
    nan_row,
    ols_fit,
    panel_info,
    t_estimate,
)


@dataclass
class _Fit:
    """One accepted fit: per-condition slope estimates plus variance summaries."""

    method: str
    est: Mapping[str, tuple[float, float, float]]  # condition -> (slope, se, df)
    n_obs: int
    converged: bool = True
    var_family: float = np.nan
    var_slope: float = np.nan
    resid_var: float = np.nan
    scale: dict[str, float] = field(default_factory=dict)  # condition -> SD multiplier
    note: str = ""


def _resid_sd(d: pd.DataFrame) -> float:
    """Residual SD of y on x within one condition (falls back to the plain SD)."""
    y = d["y"].to_numpy(float)
    x = d["x"].to_numpy(float)
    if len(y) >= 3 and np.ptp(x) > 0:
        resid = y - np.polyval(np.polyfit(x, y, 1), x)
        sd = float(np.sqrt((resid**2).sum() / (len(y) - 2)))
    else:
        sd = float(np.std(y))
    return sd if np.isfinite(sd) and sd > 0 else 1.0


def _between_within_df(d: pd.DataFrame, random_slope: bool) -> int:
    """Degrees of freedom of a slope under family random effects (between-within rule).

    With a family random slope the slope varies by family, so only families count
    (n_families - 1); with a random intercept the slope is a within-family contrast,
    and models beyond the family means and the slope count (n_models - n_families - 1).
    """
    n_families = d["family"].nunique()
    if random_slope:
        return n_families - 1
    return d["model"].nunique() - n_families - 1


def _try_mixedlm(
    d: pd.DataFrame, conds: list[str], random_slope: bool, min_df: int
) -> tuple[_Fit | None, str]:
    """Pooled MixedLM: y ~ 0 + condition + condition:x, family random intercept(+slope)."""
    method = RANDOM_SLOPE if random_slope else RANDOM_INTERCEPT
    dfs = {c: _between_within_df(d[d["condition"] == c], random_slope) for c in conds}
    if min(dfs.values()) < min_df:
        return None, f"{method}: {min(dfs.values())} between-within df (< {min_df})"
    d = d.sort_values(["family", "model", "condition"], kind="stable")
    x = d["x"].to_numpy(float)
    xc = x - x.mean()
    # Each condition is divided by its own residual spread (OLS on x within the
    # condition): ceiling conditions vary less, and one pooled residual variance
    # would make their CIs too wide and the others' too narrow.
    scale_c = {c: _resid_sd(d.loc[d["condition"] == c]) for c in conds}
    sd_row = d["condition"].map(scale_c).to_numpy(float)
    ys = (d["y"].to_numpy(float) - d.groupby("condition")["y"].transform("mean")) / sd_row
    ys = ys.to_numpy(float)
    ind = np.column_stack([(d["condition"] == c).to_numpy(float) for c in conds])
    exog = np.hstack([ind, ind * xc[:, None]])
    exog_re = np.column_stack([np.ones_like(xc), xc]) if random_slope else np.ones((len(xc), 1))
    slope_idx = list(range(len(conds), 2 * len(conds)))
    mod = MixedLM(ys, exog, groups=d["family"].to_numpy(), exog_re=exog_re)
    res, msgs, opt_note = fit_mixedlm(mod)
    if res is None:
        return None, f"{method}: {opt_note}"
    probs = mixedlm_problems(res, msgs, slope_idx)
    cov_re = np.atleast_2d(np.asarray(res.cov_re, dtype=float))
    var_x = float(np.var(xc))
    if np.isfinite(cov_re).all():
        if cov_re[0, 0] < BOUNDARY_TOL:
            probs.append("family intercept variance on the boundary (~0)")
        if random_slope:
            if cov_re[1, 1] * var_x < BOUNDARY_TOL:
                probs.append("random-slope variance on the boundary (~0)")
            else:
                eig = np.linalg.eigvalsh(cov_re)
                if eig[0] <= 1e-6 * eig[-1]:
                    probs.append("singular random-effects covariance (|corr| ~ 1)")
    else:
        probs.append("non-finite random-effects covariance")
    if probs:
        return None, f"{method}: " + ", ".join(dict.fromkeys(probs))
    fe = np.asarray(res.fe_params)
    bse = np.asarray(res.bse_fe)
    est = {}
    for j, c in enumerate(conds):
        k, sc = len(conds) + j, scale_c[c]
        est[c] = (fe[k] * sc, bse[k] * sc, dfs[c])
    # Variances are fitted on the standardised scale; each condition's row gets
    # them back on its own metric scale (the model lets them scale with spread).
    return (
        _Fit(
            method=method,
            est=est,
            n_obs=len(d),
            var_family=float(cov_re[0, 0]),
            var_slope=float(cov_re[1, 1]) if random_slope else np.nan,
            resid_var=float(res.scale),
            scale=scale_c,
            note=opt_note,
        ),
        "",
    )


def _ols_ladder(dc: pd.DataFrame, min_df: int) -> tuple[str, tuple[float, float, float], str]:
    """Per-condition fallback ladder after the mixed models were ruled out.

    Returns the method, (slope, se, residual df) and the reasons rungs were refused.
    Below ``min_df`` residual df nothing is printed but a descriptive note.
    """
    info = panel_info(dc)
    reasons = []
    y = dc["y"].to_numpy(float)
    x = dc["x"].to_numpy(float)
    xc = x - x.mean()
    n = len(dc)
    # 1. family fixed effects: slope from within-family size differences only.
    n_fam = info["n_families"]
    df_fixed = n - (1 + n_fam)
    if info["within_family_df"] >= 1 and df_fixed >= min_df:
        fam = pd.get_dummies(dc["family"]).to_numpy(float)
        X = np.column_stack([xc, fam])
        if np.linalg.matrix_rank(X) == X.shape[1]:
            b, se, _, _ = ols_fit(y, X, 0)
            if np.isfinite(se) and se > 0:
                return OLS_FAMILY_FIXED, (b, se, df_fixed), ""
            reasons.append(f"{OLS_FAMILY_FIXED}: zero/NaN SE")
        else:
            reasons.append(f"{OLS_FAMILY_FIXED}: rank deficient")
    elif info["within_family_df"] < 1:
        reasons.append(f"{OLS_FAMILY_FIXED}: no within-family size variation")
    else:
        reasons.append(f"{OLS_FAMILY_FIXED}: {df_fixed} residual df (< {min_df})")
    # 2. plain OLS over models (families ignored).
    if n - 2 >= min_df:
        b, se, _, _ = ols_fit(y, np.column_stack([np.ones(n), xc]), 1)
        if np.isfinite(se) and se > 0:
            return OLS, (b, se, n - 2), join_notes(*reasons)
        reasons.append(f"{OLS}: zero/NaN SE (perfect fit)")
    else:
        b = float(np.polyfit(xc, y, 1)[0])
        reasons.append(
            f"{OLS}: {n} models, {n - 2} residual df (< {min_df}): no interval or test is"
            f" supported; the line through them has slope {b:+.4f} per decade"
        )
    return NOT_ESTIMABLE, (np.nan, np.nan, np.nan), join_notes(*reasons)


def _precheck(dc: pd.DataFrame) -> str:
    """Reason a condition cannot give a slope at all ('' when it can)."""
    if dc.empty:
        return "no data"
    if dc["params_b"].nunique() < 2:
        sizes = ", ".join(f"{v:g}B" for v in sorted(dc["params_b"].unique()))
        return f"single model size ({sizes}): slope not defined"
    if dc["y"].nunique() < 2:
        return f"outcome constant (all {dc['y'].iloc[0]:g}): zero variance, slope not estimable"
    return ""


def fit_scaling_slopes(
    metrics: pd.DataFrame,
    metric_cols: Sequence[str] | None = None,
    conditions: Sequence[str] | None = None,
    by_condition: bool = False,
    min_families: int = 3,
    min_slope_families: int = 3,
    alpha: float = 0.05,
    min_df: int = MIN_RESIDUAL_DF,
) -> pd.DataFrame:
    """Slope of each metric on log10(params) per condition, with a fallback ladder.

    Fits ``metric ~ 0 + condition + condition:log10(params)`` (one slope per
    condition, i.e. the ``log10(params) * condition`` model reparametrised) with
    family random intercept, plus a family random slope when at least
    ``min_slope_families`` families have >= 3 distinct sizes. ``by_condition``
    fits each condition separately (own residual variance). Every CI and p comes
    from t(df) (``df`` column; between-within df for the mixed models); a fit with
    fewer than ``min_df`` df is not estimable. (No question-clustered rung: it
    treats the models as fixed, so it is no scaling slope.) One row per (metric,
    condition); ``p_holm``/``p_bh`` adjust over the table.
    """
    cols = [m for m in (metric_cols or ALL_METRICS) if m in metrics.columns]
    conds_all = ordered_conditions(
        conditions if conditions is not None else metrics["condition"].unique()
    )
    rows: list[dict[str, Any]] = []
    for metric in cols:
        base = metrics.loc[metrics["condition"].isin(conds_all)].copy()
        base["y"] = base[metric].astype(float)
        base = base.dropna(subset=["y", "params_b"])
        base = base[base["params_b"] > 0]
        base["x"] = log10_params(base["params_b"])
        pre: dict[str, str] = {c: _precheck(base[base["condition"] == c]) for c in conds_all}
        ok = [c for c in conds_all if not pre[c]]
        groups = [[c] for c in ok] if by_condition else ([ok] if ok else [])
        results: dict[str, tuple[_Fit | None, str]] = {}
        for grp in groups:
            d = base[base["condition"].isin(grp)]
            info = panel_info(d)
            reasons: list[str] = []
            fit: _Fit | None = None
            gate = mixed_gate(info, min_families)
            if gate:
                reasons.append(f"mixedlm skipped: {gate}")
            else:
                if info["n_families_3sizes"] >= min_slope_families:
                    fit, why = _try_mixedlm(d, grp, random_slope=True, min_df=min_df)
                    if why:
                        reasons.append(why)
                else:
                    reasons.append(
                        f"{RANDOM_SLOPE} skipped: {info['n_families_3sizes']} families with"
                        f" >= 3 sizes (< {min_slope_families})"
                    )
                if fit is None:
                    fit, why = _try_mixedlm(d, grp, random_slope=False, min_df=min_df)
                    if why:
                        reasons.append(why)
            for c in grp:
                results[c] = (fit, join_notes(*reasons))
        for c in conds_all:
            dc = base[base["condition"] == c]
            info = panel_info(dc) if not dc.empty else {"n_models": 0, "n_families": 0}
            common = {
                "metric": metric,
                "condition": c,
                "n_models": info["n_models"],
                "n_families": info["n_families"],
            }
            if pre[c]:
                rows.append(
                    nan_row(
                        SLOPE_COLUMNS,
                        **common,
                        n_obs=len(dc),
                        method=NOT_ESTIMABLE,
                        converged=False,
                        fallback=True,
                        note=pre[c],
                    )
                )
                continue
            fit, reasons_txt = results[c]
            if fit is not None:
                b, se, df = fit.est[c]
                s2 = fit.scale.get(c, 1.0) ** 2
                rows.append(
                    {
                        **common,
                        **t_estimate(b, se, df, alpha),
                        "n_obs": fit.n_obs,
                        "method": fit.method,
                        "converged": True,
                        "fallback": fit.method != RANDOM_SLOPE,
                        "var_family": fit.var_family * s2,
                        "var_slope": fit.var_slope * s2,
                        "resid_var": fit.resid_var * s2,
                        "note": join_notes(reasons_txt, fit.note),
                    }
                )
                continue
            method, (b, se, df), why = _ols_ladder(dc, min_df)
            rows.append(
                {
                    **common,
                    **t_estimate(b, se, df, alpha),
                    "n_obs": len(dc),
                    "method": method,
                    "converged": method != NOT_ESTIMABLE,
                    "fallback": True,
                    "var_family": np.nan,
                    "var_slope": np.nan,
                    "resid_var": np.nan,
                    "note": join_notes(reasons_txt, why),
                }
            )
    return add_adjusted(pd.DataFrame(rows, columns=SLOPE_COLUMNS), "p")
