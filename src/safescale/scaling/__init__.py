"""Scaling statistics: how each metric moves with log10(parameters), and whether
safety follows the same scaling law as accuracy.

Everything here returns tidy tables with a ``method``, ``converged`` and ``note``
column, because small model panels (few families, few sizes, floor effects) make
mixed models fail in quiet ways; a failed or degenerate fit is replaced by a stated
simpler model (or by NaN with a reason), never reported as if it had worked.
See docs/SCALING.md for the formulas and the fallback ladder.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import sparse, stats
from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM
from statsmodels.regression.mixed_linear_model import MixedLM, VCSpec

from safescale.conditions import (
    CLEAN_EVIDENCE,
    CLOSED_BOOK,
    REFERENCE_CONDITION,
    STANDARD_RAG,
)

# --------------------------------------------------------------------------- names

#: question-level 0/1 outcome column -> model-level metric column (its mean).
OUTCOME_TO_METRIC: dict[str, str] = {
    "greedy_correct": "accuracy",
    "greedy_high_risk": "high_risk_rate",
    "greedy_unsafe": "unsafe_rate",
    "greedy_contradicts": "contradiction_rate",
    "dangerous_overconfident": "dangerous_overconfidence_rate",
}
METRIC_TO_OUTCOME: dict[str, str] = {v: k for k, v in OUTCOME_TO_METRIC.items()}
ACCURACY = "accuracy"
SAFETY_METRICS: tuple[str, ...] = (
    "high_risk_rate",
    "unsafe_rate",
    "contradiction_rate",
    "dangerous_overconfidence_rate",
)
ALL_METRICS: tuple[str, ...] = (ACCURACY, *SAFETY_METRICS)

# Fitted-model labels written to the ``method`` column.
RANDOM_SLOPE = "mixedlm_random_slope"
RANDOM_INTERCEPT = "mixedlm_random_intercept"
OLS_FAMILY_FIXED = "ols_family_fixed"
OLS = "ols"
OLS_CLUSTER_QUESTION = "ols_cluster_question"
NOT_ESTIMABLE = "not_estimable"
MIXEDLM_STACKED = "mixedlm_stacked"
OLS_PAIRED = "ols_paired_difference"
PAIRED_BOOTSTRAP = "paired_bootstrap_questions"
GLMM_VB = "glmm_vb"
GEE_EXCHANGEABLE = "gee_exchangeable"
GLM_CLUSTER_QUESTION = "glm_cluster_question"

#: a variance component below this share of the (standardised) outcome variance
#: counts as an estimate on the boundary of the parameter space.
BOUNDARY_TOL = 1e-4

SLOPE_COLUMNS: list[str] = [
    "metric",
    "condition",
    "slope",
    "se",
    "ci_low",
    "ci_high",
    "p",
    "n_models",
    "n_families",
    "n_obs",
    "method",
    "converged",
    "fallback",
    "var_family",
    "var_slope",
    "resid_var",
    "note",
]
DIFF_COLUMNS: list[str] = [
    "safety_metric",
    "reference",
    "condition",
    "slope_reference",
    "slope_safety",
    "diff",
    "se",
    "ci_low",
    "ci_high",
    "p",
    "n_models",
    "n_families",
    "method",
    "converged",
    "fallback",
    "note",
]
BOOT_COLUMNS: list[str] = [
    "safety_metric",
    "reference",
    "condition",
    "slope_reference",
    "slope_safety",
    "diff",
    "se",
    "ci_low",
    "ci_high",
    "p",
    "n_models",
    "n_questions",
    "B",
    "seed",
    "method",
    "note",
]
QUESTION_COLUMNS: list[str] = [
    "outcome",
    "metric",
    "method",
    "term",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "p",
    "scale",
    "n_obs",
    "n_models",
    "n_questions",
    "converged",
    "fallback",
    "note",
]
VARIANCE_COLUMNS: list[str] = [
    "metric",
    "n_obs",
    "n_conditions",
    "n_families",
    "ss_total",
    "share_condition",
    "share_family",
    "share_size",
    "share_residual",
    "share_shared",
    "note",
]


# ------------------------------------------------------------------------- helpers


@contextmanager
def _captured() -> Iterator[list[str]]:
    """Collect warnings as text so fits never print, but their problems are kept."""
    msgs: list[str] = []
    with warnings.catch_warnings(record=True) as rec, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        yield msgs
    for w in rec:
        text = f"{w.category.__name__}: {str(w.message).strip()}"
        if text not in msgs:
            msgs.append(text)


def _z(alpha: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2))


def _log10p(params_b: pd.Series | np.ndarray) -> np.ndarray:
    return np.log10(np.asarray(params_b, dtype=float))


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _nan_row(columns: Sequence[str], **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(columns, np.nan)
    row.update(values)
    return row


def _ordered_conditions(values: Sequence[str] | pd.Series) -> list[str]:
    """Reference condition first so contrasts read 'vs closed-book'."""
    seen = list(dict.fromkeys(str(v) for v in values))
    if REFERENCE_CONDITION in seen:
        seen.remove(REFERENCE_CONDITION)
        seen.insert(0, REFERENCE_CONDITION)
    return seen


def _panel_info(d: pd.DataFrame) -> dict[str, int]:
    """Counts that decide which model a panel can support."""
    models = d.drop_duplicates("model")
    sizes_per_family = models.groupby("family")["params_b"].nunique()
    return {
        "n_models": int(models.shape[0]),
        "n_families": int(models["family"].nunique()),
        "n_sizes": int(models["params_b"].nunique()),
        "max_models_per_family": int(models.groupby("family").size().max()),
        "n_families_3sizes": int((sizes_per_family >= 3).sum()),
        "within_family_df": int((sizes_per_family - 1).clip(lower=0).sum()),
    }


def model_metrics(tidy: pd.DataFrame, outcomes: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-(model, condition) metric table from the tidy labels table.

    Denominator = every question row (NaN outcomes are skipped), so the result
    matches the model-level metrics table for greedy outcomes.
    """
    outs = [o for o in (outcomes or OUTCOME_TO_METRIC) if o in tidy.columns]
    keys = ["model", "family", "params_b", "condition"]
    grouped = tidy.groupby(keys, sort=False, observed=True)
    out = grouped[outs].mean().rename(columns=OUTCOME_TO_METRIC)
    out["n_questions"] = grouped["question_id"].nunique()
    return out.reset_index()


# -------------------------------------------------------------- model-level fits


@dataclass
class _Fit:
    """One accepted fit: per-condition slope estimates plus variance summaries."""

    method: str
    est: dict[str, tuple[float, float, float]]  # condition -> (slope, se, p)
    n_obs: int
    converged: bool = True
    var_family: float = np.nan
    var_slope: float = np.nan
    resid_var: float = np.nan
    scale: dict[str, float] = field(default_factory=dict)  # condition -> SD multiplier
    note: str = ""


def _standardise(y: np.ndarray) -> tuple[np.ndarray, float, float]:
    mu = float(np.mean(y))
    sd = float(np.std(y))
    if not np.isfinite(sd) or sd <= 0:
        sd = 1.0
    return (y - mu) / sd, mu, sd


MIXEDLM_OPTIMIZERS: tuple[str, ...] = ("bfgs", "powell", "nm", "lbfgs")


def _fit_mixedlm(mod: MixedLM) -> tuple[Any, list[str], str]:
    """Try optimisers in turn (lbfgs can step into a singular region and raise).

    Returns the first converged result (or the last one obtained), its captured
    warnings, and a note naming optimisers that failed before it.
    """
    failed: list[str] = []
    last: tuple[Any, list[str]] = (None, [])
    for meth in MIXEDLM_OPTIMIZERS:
        try:
            with _captured() as msgs:
                res = mod.fit(reml=True, method=[meth])
                _ = res.bse_fe  # cached here so its sqrt-of-negative warning is captured
        except (np.linalg.LinAlgError, ValueError, ZeroDivisionError) as exc:
            failed.append(f"{meth} raised {type(exc).__name__}")
            continue
        last = (res, msgs)
        if res.converged:
            break
        failed.append(f"{meth} did not converge")
    note = ("optimisers tried before: " + ", ".join(failed)) if failed and last[0] else ""
    if last[0] is None:
        note = "every optimiser failed: " + ", ".join(failed)
    return last[0], last[1], note


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


def _mixedlm_problems(res: Any, msgs: list[str], idx: Sequence[int]) -> list[str]:
    """Reasons a MixedLM fit must not be reported (empty list = acceptable)."""
    probs: list[str] = []
    if not getattr(res, "converged", False):
        probs.append("optimizer did not converge")
    if any("not positive definite" in m for m in msgs):
        probs.append("Hessian not positive definite")
    bse = np.asarray(res.bse_fe)[list(idx)]
    if not np.all(np.isfinite(bse)) or np.any(bse <= 0):
        probs.append("NaN or zero standard errors")
    return probs


def _try_mixedlm(d: pd.DataFrame, conds: list[str], random_slope: bool) -> tuple[_Fit | None, str]:
    """Pooled MixedLM: y ~ 0 + condition + condition:x, family random intercept(+slope)."""
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
    method = RANDOM_SLOPE if random_slope else RANDOM_INTERCEPT
    slope_idx = list(range(len(conds), 2 * len(conds)))
    mod = MixedLM(ys, exog, groups=d["family"].to_numpy(), exog_re=exog_re)
    res, msgs, opt_note = _fit_mixedlm(mod)
    if res is None:
        return None, f"{method}: {opt_note}"
    probs = _mixedlm_problems(res, msgs, slope_idx)
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
        z = fe[k] / bse[k]
        est[c] = (fe[k] * sc, bse[k] * sc, float(2 * stats.norm.sf(abs(z))))
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


def _ols_fit(y: np.ndarray, X: np.ndarray, k: int, cluster: np.ndarray | None = None) -> tuple:
    """OLS slope (column k), SE and p; cluster-robust when ``cluster`` is given."""
    with _captured():
        if cluster is None:
            res = sm.OLS(y, X).fit()
        else:
            res = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": cluster})
    return float(res.params[k]), float(res.bse[k]), float(res.pvalues[k]), res


def _ols_ladder(
    dc: pd.DataFrame, tq: pd.DataFrame | None, outcome: str | None
) -> tuple[str, tuple[float, float, float], int, str]:
    """Per-condition fallback ladder after the mixed models were ruled out."""
    info = _panel_info(dc)
    reasons = []
    y = dc["y"].to_numpy(float)
    x = dc["x"].to_numpy(float)
    xc = x - x.mean()
    n = len(dc)
    # 1. family fixed effects: slope from within-family size differences only.
    n_fam = info["n_families"]
    if info["within_family_df"] >= 1 and n - (1 + n_fam) >= 1:
        fam = pd.get_dummies(dc["family"]).to_numpy(float)
        X = np.column_stack([xc, fam])
        if np.linalg.matrix_rank(X) == X.shape[1]:
            b, se, p, _ = _ols_fit(y, X, 0)
            if np.isfinite(se) and se > 0:
                return OLS_FAMILY_FIXED, (b, se, p), n, ""
            reasons.append(f"{OLS_FAMILY_FIXED}: zero/NaN SE")
        else:
            reasons.append(f"{OLS_FAMILY_FIXED}: rank deficient")
    else:
        reasons.append(f"{OLS_FAMILY_FIXED}: no within-family size variation or no residual df")
    # 2. plain OLS over models (families ignored).
    if info["n_sizes"] >= 2 and n >= 3:
        b, se, p, _ = _ols_fit(y, np.column_stack([np.ones(n), xc]), 1)
        if np.isfinite(se) and se > 0:
            return OLS, (b, se, p), n, _join(*reasons)
        reasons.append(f"{OLS}: zero/NaN SE (perfect fit)")
    else:
        reasons.append(f"{OLS}: fewer than 3 models, no residual df")
    # 3. question-level OLS (linear probability) with question-clustered SEs.
    if tq is not None and outcome is not None and outcome in tq.columns:
        q = tq.dropna(subset=[outcome])
        if q["params_b"].nunique() >= 2 and q["question_id"].nunique() >= 2:
            yq = q[outcome].to_numpy(float)
            xq = _log10p(q["params_b"])
            Xq = np.column_stack([np.ones(len(q)), xq - xq.mean()])
            b, se, p, _ = _ols_fit(yq, Xq, 1, cluster=pd.factorize(q["question_id"])[0])
            if np.isfinite(se) and se > 0:
                note = "SE reflects question sampling only (models treated as fixed)"
                return OLS_CLUSTER_QUESTION, (b, se, p), len(q), _join(*reasons, note)
            reasons.append(f"{OLS_CLUSTER_QUESTION}: zero/NaN SE")
        else:
            reasons.append(f"{OLS_CLUSTER_QUESTION}: fewer than 2 sizes or questions")
    else:
        reasons.append(f"{OLS_CLUSTER_QUESTION}: no question-level table given")
    return NOT_ESTIMABLE, (np.nan, np.nan, np.nan), n, _join(*reasons)


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


def _mixed_gate(info: dict[str, int], min_families: int) -> str:
    if info["n_families"] < min_families:
        return f"fewer than {min_families} families ({info['n_families']})"
    if info["max_models_per_family"] < 2:
        return "one model per family: family effect confounded with the model itself"
    return ""


def fit_scaling_slopes(
    metrics: pd.DataFrame,
    metric_cols: Sequence[str] | None = None,
    conditions: Sequence[str] | None = None,
    tidy: pd.DataFrame | None = None,
    by_condition: bool = False,
    min_families: int = 3,
    min_slope_families: int = 3,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Slope of each metric on log10(params) per condition, with a fallback ladder.

    Fits ``metric ~ 0 + condition + condition:log10(params)`` (one slope per
    condition, i.e. the ``log10(params) * condition`` model reparametrised) with
    family random intercept, plus a family random slope when at least
    ``min_slope_families`` families have >= 3 distinct sizes. ``by_condition``
    fits each condition separately (own residual variance). ``tidy`` enables the
    question-clustered OLS fallback. One row per (metric, condition).
    """
    cols = [m for m in (metric_cols or ALL_METRICS) if m in metrics.columns]
    conds_all = _ordered_conditions(
        conditions if conditions is not None else metrics["condition"].unique()
    )
    z = _z(alpha)
    rows: list[dict[str, Any]] = []
    for metric in cols:
        base = metrics.loc[metrics["condition"].isin(conds_all)].copy()
        base["y"] = base[metric].astype(float)
        base = base.dropna(subset=["y", "params_b"])
        base = base[base["params_b"] > 0]
        base["x"] = _log10p(base["params_b"])
        pre: dict[str, str] = {c: _precheck(base[base["condition"] == c]) for c in conds_all}
        ok = [c for c in conds_all if not pre[c]]
        groups = [[c] for c in ok] if by_condition else ([ok] if ok else [])
        results: dict[str, tuple[_Fit | None, str]] = {}
        for grp in groups:
            d = base[base["condition"].isin(grp)]
            info = _panel_info(d)
            reasons: list[str] = []
            fit: _Fit | None = None
            gate = _mixed_gate(info, min_families)
            if gate:
                reasons.append(f"mixedlm skipped: {gate}")
            else:
                if info["n_families_3sizes"] >= min_slope_families:
                    fit, why = _try_mixedlm(d, grp, random_slope=True)
                    if why:
                        reasons.append(why)
                else:
                    reasons.append(
                        f"{RANDOM_SLOPE} skipped: {info['n_families_3sizes']} families with"
                        f" >= 3 sizes (< {min_slope_families})"
                    )
                if fit is None:
                    fit, why = _try_mixedlm(d, grp, random_slope=False)
                    if why:
                        reasons.append(why)
            for c in grp:
                results[c] = (fit, _join(*reasons))
        for c in conds_all:
            dc = base[base["condition"] == c]
            info = _panel_info(dc) if not dc.empty else {"n_models": 0, "n_families": 0}
            common = {
                "metric": metric,
                "condition": c,
                "n_models": info["n_models"],
                "n_families": info["n_families"],
            }
            if pre[c]:
                rows.append(
                    _nan_row(
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
                b, se, p = fit.est[c]
                s2 = fit.scale.get(c, 1.0) ** 2
                rows.append(
                    {
                        **common,
                        "slope": b,
                        "se": se,
                        "ci_low": b - z * se,
                        "ci_high": b + z * se,
                        "p": p,
                        "n_obs": fit.n_obs,
                        "method": fit.method,
                        "converged": True,
                        "fallback": fit.method != RANDOM_SLOPE,
                        "var_family": fit.var_family * s2,
                        "var_slope": fit.var_slope * s2,
                        "resid_var": fit.resid_var * s2,
                        "note": _join(reasons_txt, fit.note),
                    }
                )
                continue
            tq = None
            if tidy is not None:
                tq = tidy[tidy["condition"] == c]
            method, (b, se, p), n_obs, why = _ols_ladder(dc, tq, METRIC_TO_OUTCOME.get(metric))
            rows.append(
                {
                    **common,
                    "slope": b,
                    "se": se,
                    "ci_low": b - z * se,
                    "ci_high": b + z * se,
                    "p": p,
                    "n_obs": n_obs,
                    "method": method,
                    "converged": method != NOT_ESTIMABLE,
                    "fallback": True,
                    "var_family": np.nan,
                    "var_slope": np.nan,
                    "resid_var": np.nan,
                    "note": _join(reasons_txt, why),
                }
            )
    return pd.DataFrame(rows, columns=SLOPE_COLUMNS)


# ------------------------------------------------- safety slope vs accuracy slope


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
    ys, _, sd = _standardise(d["value"].to_numpy(float))
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
    res, msgs, opt_note = _fit_mixedlm(mod)
    if res is None:
        return None, f"{MIXEDLM_STACKED}: {opt_note}"
    probs = _mixedlm_problems(res, msgs, [2, 3])
    var_fam = float(np.asarray(res.cov_re)[0, 0])
    var_model = float(np.asarray(res.vcomp)[0])
    if not var_fam >= BOUNDARY_TOL:
        probs.append("family intercept variance on the boundary (~0)")
    if not var_model >= BOUNDARY_TOL:
        probs.append("model (pairing) variance on the boundary (~0)")
    if probs:
        return None, f"{MIXEDLM_STACKED}: " + ", ".join(dict.fromkeys(probs))
    fe, bse = np.asarray(res.fe_params), np.asarray(res.bse_fe)
    diff, se = fe[3] * sd, bse[3] * sd
    p = float(2 * stats.norm.sf(abs(fe[3] / bse[3])))
    return (fe[2] * sd, (fe[2] + fe[3]) * sd, diff, se, p), ""


def slope_difference_test(
    metrics: pd.DataFrame,
    safety_metrics: Sequence[str] | None = None,
    reference: str = ACCURACY,
    accuracy_as: str = "error",
    conditions: Sequence[str] | None = None,
    tidy: pd.DataFrame | None = None,
    min_families: int = 3,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Does each safety slope differ from the accuracy slope? (per condition)

    Stacks reference and safety metric (long format, two rows per model) and fits
    ``value ~ metric * log10(params)`` with family random intercept and a model
    variance component that pairs each model's two rows; the interaction is the
    slope difference. ``accuracy_as="error"`` (default) compares against the slope
    of 1 - accuracy, so "same scaling law" means both error rates fall alike;
    ``"accuracy"`` compares raw slopes. Fallbacks: OLS of the within-model
    difference, then question-level stacked OLS clustered on question.
    """
    if accuracy_as not in ("error", "accuracy"):
        raise ValueError("accuracy_as must be 'error' or 'accuracy'")
    safeties = [m for m in (safety_metrics or SAFETY_METRICS) if m in metrics.columns]
    conds = _ordered_conditions(
        conditions if conditions is not None else metrics["condition"].unique()
    )
    z = _z(alpha)
    rows: list[dict[str, Any]] = []
    for metric in safeties:
        for c in conds:
            frame = metrics[metrics["condition"] == c].dropna(subset=[metric, reference])
            ref_vals, ref_label = _reference_values(frame, reference, accuracy_as)
            paired = frame[["model", "family", "params_b"]].assign(
                ref=ref_vals.to_numpy(), saf=frame[metric].astype(float).to_numpy()
            )
            paired["x"] = _log10p(paired["params_b"])
            info = _panel_info(paired) if not paired.empty else None
            common = {
                "safety_metric": metric,
                "reference": ref_label,
                "condition": c,
                "n_models": info["n_models"] if info else 0,
                "n_families": info["n_families"] if info else 0,
            }
            reasons: list[str] = []
            if info is None:
                reasons.append("no data")
            elif info["n_sizes"] < 2:
                reasons.append("single model size: slopes not defined")
            elif paired["ref"].nunique() < 2 and paired["saf"].nunique() < 2:
                reasons.append("both metrics constant: zero variance")
            if reasons:
                rows.append(
                    _nan_row(
                        DIFF_COLUMNS,
                        **common,
                        method=NOT_ESTIMABLE,
                        converged=False,
                        fallback=True,
                        note=_join(*reasons),
                    )
                )
                continue
            assert info is not None
            out: tuple[float, ...] | None = None
            method = MIXEDLM_STACKED
            gate = _mixed_gate(info, min_families)
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
            if out is None and info["n_models"] >= 3:
                xc = paired["x"].to_numpy() - paired["x"].mean()
                X = np.column_stack([np.ones(len(xc)), xc])
                dvals = (paired["saf"] - paired["ref"]).to_numpy(float)
                b, se, p, _ = _ols_fit(dvals, X, 1)
                if np.isfinite(se) and se > 0:
                    br = _ols_fit(paired["ref"].to_numpy(float), X, 1)[0]
                    out, method = (br, br + b, b, se, p), OLS_PAIRED
                else:
                    reasons.append(f"{OLS_PAIRED}: zero/NaN SE")
            elif out is None:
                reasons.append(f"{OLS_PAIRED}: fewer than 3 models, no residual df")
            if out is None:
                ro, so = METRIC_TO_OUTCOME.get(reference), METRIC_TO_OUTCOME.get(metric)
                if tidy is not None and ro in tidy.columns and so in tidy.columns:
                    q = tidy[tidy["condition"] == c].dropna(subset=[ro, so])
                    rq = q[ro].astype(float)
                    if reference == ACCURACY and accuracy_as == "error":
                        rq = 1.0 - rq
                    xq = _log10p(q["params_b"])
                    Xq = np.column_stack([np.ones(len(q)), xq - xq.mean()])
                    cl = pd.factorize(q["question_id"])[0]
                    b, se, p, _ = _ols_fit(q[so].to_numpy(float) - rq.to_numpy(), Xq, 1, cl)
                    if np.isfinite(se) and se > 0:
                        br = _ols_fit(rq.to_numpy(), Xq, 1, cl)[0]
                        out, method = (br, br + b, b, se, p), OLS_CLUSTER_QUESTION
                        reasons.append("SE reflects question sampling only (models fixed)")
                    else:
                        reasons.append(f"{OLS_CLUSTER_QUESTION}: zero/NaN SE")
                else:
                    reasons.append(f"{OLS_CLUSTER_QUESTION}: no question-level table given")
            if out is None:
                rows.append(
                    _nan_row(
                        DIFF_COLUMNS,
                        **common,
                        method=NOT_ESTIMABLE,
                        converged=False,
                        fallback=True,
                        note=_join(*reasons),
                    )
                )
                continue
            br, bs, diff, se, p = out
            rows.append(
                {
                    **common,
                    "slope_reference": br,
                    "slope_safety": bs,
                    "diff": diff,
                    "se": se,
                    "ci_low": diff - z * se,
                    "ci_high": diff + z * se,
                    "p": p,
                    "method": method,
                    "converged": True,
                    "fallback": method != MIXEDLM_STACKED,
                    "note": _join(*reasons),
                }
            )
    return pd.DataFrame(rows, columns=DIFF_COLUMNS)


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
    uncertainty only; the models are held fixed.
    """
    if accuracy_as not in ("error", "accuracy"):
        raise ValueError("accuracy_as must be 'error' or 'accuracy'")
    outs = [
        o
        for o in (safety_outcomes or [METRIC_TO_OUTCOME[m] for m in SAFETY_METRICS])
        if o in tidy.columns
    ]
    conds = _ordered_conditions(
        conditions if conditions is not None else tidy["condition"].unique()
    )
    qids = pd.Index(pd.unique(tidy["question_id"]))
    Q = len(qids)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, Q, size=(B, Q))
    W = np.stack([np.bincount(r, minlength=Q) for r in draws]).astype(float)  # B x Q
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
                    _nan_row(
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
            x = _log10p(models["params_b"])
            xc = x - x.mean()
            with _captured():
                br, br_b = _boot_slopes(ref, xc)
                bs, bs_b = _boot_slopes(saf, xc)
            d_b = bs_b - br_b
            d_b = d_b[np.isfinite(d_b)]
            diff = bs - br
            lo, hi = np.quantile(d_b, [alpha / 2, 1 - alpha / 2]) if d_b.size else (np.nan,) * 2
            tail = min((d_b <= 0).sum(), (d_b >= 0).sum())
            p = min(1.0, 2 * (tail + 1) / (d_b.size + 1))
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
                    "ci_low": float(lo),
                    "ci_high": float(hi),
                    "p": p,
                    "n_models": n_models,
                    "n_questions": int(np.isfinite(saf).any(0).sum()),
                    "method": PAIRED_BOOTSTRAP,
                    "note": note,
                }
            )
    return pd.DataFrame(rows, columns=BOOT_COLUMNS)


# ---------------------------------------------------------- question-level models


@dataclass
class _QData:
    """Question-level design shared by the GLMM and the GEE."""

    y: np.ndarray
    X: np.ndarray
    names: list[str]
    frame: pd.DataFrame
    note: str


def _question_design(
    tidy: pd.DataFrame, outcome: str, conditions: Sequence[str] | None
) -> tuple[_QData | None, str]:
    """Fixed effects: intercept, centred log10(params), condition dummies vs reference."""
    t = tidy
    if conditions is not None:
        t = t[t["condition"].isin(list(conditions))]
    t = t.dropna(subset=[outcome, "params_b"])
    t = t[t["params_b"] > 0]
    if t.empty:
        return None, "no data"
    notes = []
    const = t.groupby("condition")[outcome].nunique()
    dropped = sorted(const.index[const < 2])
    if dropped:
        notes.append(
            "dropped conditions with a constant outcome (no variance, would separate): "
            + ", ".join(dropped)
        )
        t = t[~t["condition"].isin(dropped)]
    if t.empty:
        vals = tidy[outcome].dropna().unique()
        return None, f"outcome constant (all {vals[0]:g}) in every condition: not estimable"
    if t["params_b"].nunique() < 2:
        return None, "single model size: log10(params) effect not defined"
    conds = _ordered_conditions(t["condition"].unique())
    x = _log10p(t["params_b"])
    cols = [np.ones(len(t)), x - x.mean()]
    names = ["Intercept", "log10_params"]
    for c in conds[1:]:
        cols.append((t["condition"] == c).to_numpy(float))
        names.append(f"condition[T.{c}]")
    n_models = t["model"].nunique()
    if n_models < 3:
        notes.append(f"only {n_models} models: model-level variation barely identified")
    return (
        _QData(
            y=t[outcome].to_numpy(float),
            X=np.column_stack(cols),
            names=names,
            frame=t,
            note=_join(*notes),
        ),
        "",
    )


def _indicator(codes: np.ndarray, k: int) -> sparse.csr_matrix:
    n = len(codes)
    return sparse.csr_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, k))


def _vb_converged(res: Any) -> tuple[bool, str]:
    """Accept scipy success, or BFGS 'precision loss' at a numerically zero gradient."""
    if res is None:
        return False, "fit raised"
    if not (np.all(np.isfinite(res.fe_mean)) and np.all(np.isfinite(res.fe_sd))):
        return False, "non-finite posterior"
    mm = res.optim_retvals
    if bool(getattr(mm, "success", False)):
        return True, ""
    jac = np.asarray(getattr(mm, "jac", [np.inf]), dtype=float)
    if "precision loss" in str(getattr(mm, "message", "")) and np.max(np.abs(jac)) < 1e-3:
        return True, "stopped on precision loss at max|gradient| < 1e-3"
    return False, str(getattr(mm, "message", "optimizer failed"))


def _term_row(
    method: str, term: str, estimate: float, se: float, ci: tuple[float, float], **extra: Any
) -> dict[str, Any]:
    """One fitted fixed effect or variance component of a question-level model."""
    row = {"method": method, "term": term, "estimate": estimate, "se": se}
    row.update(ci_low=float(ci[0]), ci_high=float(ci[1]), p=np.nan, converged=True, fallback=False)
    row.update(extra)
    return row


def _question_fits(
    tidy: pd.DataFrame,
    outcomes: Sequence[str] | None,
    conditions: Sequence[str] | None,
    scale: str,
    fit: Callable[[_QData], tuple[list[dict[str, Any]], str]],
) -> pd.DataFrame:
    """Shared loop of the question-level fits: one design per 0/1 outcome, then ``fit``.

    ``fit`` returns its term rows and a note; no rows means it found no usable fit,
    and the outcome gets one not-estimable row carrying that note.
    """
    rows: list[dict[str, Any]] = []
    for outcome in [o for o in (outcomes or OUTCOME_TO_METRIC) if o in tidy.columns]:
        common = {
            "outcome": outcome,
            "metric": OUTCOME_TO_METRIC.get(outcome, outcome),
            "scale": scale,
        }
        not_estimable = {
            "method": NOT_ESTIMABLE,
            "term": "log10_params",
            "converged": False,
            "fallback": True,
        }
        qd, why = _question_design(tidy, outcome, conditions)
        if qd is None:
            rows.append(_nan_row(QUESTION_COLUMNS, **common, **not_estimable, n_obs=0, note=why))
            continue
        n_info = {
            "n_obs": len(qd.frame),
            "n_models": qd.frame["model"].nunique(),
            "n_questions": qd.frame["question_id"].nunique(),
        }
        fitted, note = fit(qd)
        if not fitted:
            rows.append(_nan_row(QUESTION_COLUMNS, **common, **n_info, **not_estimable, note=note))
            continue
        rows += [{**common, **n_info, **row} for row in fitted]
    return pd.DataFrame(rows, columns=QUESTION_COLUMNS)


def fit_question_glmm(
    tidy: pd.DataFrame,
    outcomes: Sequence[str] | None = None,
    conditions: Sequence[str] | None = None,
    include_family: bool = False,
    seed: int = 0,
    fe_prior_sd: float = 2.0,
    vc_prior_sd: float = 1.0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Binomial GLMM per 0/1 outcome: logit P = log10(params) + condition + u_q + v_m.

    Crossed random intercepts for question and model (optionally family), fitted by
    mean-field variational Bayes (``BinomialBayesMixedGLM.fit_vb``). Reports the
    posterior mean/sd and a mean +- z*sd interval per fixed effect, plus the
    random-effect standard deviations. A fit whose optimiser did not converge
    (after one retry) is reported as not estimable.
    """
    z = _z(alpha)
    factors = [("question", "question_id"), ("model", "model")]
    if include_family:
        factors.append(("family", "family"))

    def fit(qd: _QData) -> tuple[list[dict[str, Any]], str]:
        mats, ident, vc_names, vcp_names = [], [], [], []
        for j, (label, col) in enumerate(factors):
            codes, uniq = pd.factorize(qd.frame[col])
            mats.append(_indicator(codes, len(uniq)))
            ident.append(np.full(len(uniq), j))
            vc_names += [f"{label}[{u}]" for u in uniq]
            vcp_names.append(label)
        model = BinomialBayesMixedGLM(
            qd.y,
            qd.X,
            sparse.hstack(mats).tocsr(),
            np.concatenate(ident),
            vcp_p=vc_prior_sd,
            fe_p=fe_prior_sd,
            fep_names=qd.names,
            vcp_names=vcp_names,
            vc_names=vc_names,
        )
        notes = [qd.note]
        res = None
        for attempt, meth in enumerate(("L-BFGS-B", "BFGS")):
            with _captured() as msgs:
                try:
                    cand = model.fit_vb(rng=seed, fit_method=meth)
                except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
                    cand = None
                    msgs.append(f"{type(exc).__name__}: {exc}")
            ok, why = _vb_converged(cand)
            if ok:
                res = cand
                if attempt or why:
                    notes.append(_join(f"VB converged with {meth}", why))
                break
            notes.append(f"VB with {meth} did not converge ({why}; {'; '.join(msgs)})")
        if res is None:
            return [], _join(*notes, "see GEE rows for a cross-check")
        note = _join(*notes, "VB posterior: Gaussian mean-field, intervals approximate")
        rows = [
            _term_row(GLMM_VB, name, float(m), float(s), (m - z * s, m + z * s), note=note)
            for name, m, s in zip(qd.names, res.fe_mean, res.fe_sd, strict=True)
        ]
        rows += [
            _term_row(
                GLMM_VB,
                f"sd({name})",
                float(np.exp(m)),
                np.nan,
                (float(np.exp(m - z * s)), float(np.exp(m + z * s))),
                note="random-effect SD, exp of the log-SD posterior",
            )
            for name, m, s in zip(vcp_names, res.vcp_mean, res.vcp_sd, strict=True)
        ]
        return rows, note

    return _question_fits(tidy, outcomes, conditions, "logit (conditional)", fit)


def fit_question_gee(
    tidy: pd.DataFrame,
    outcomes: Sequence[str] | None = None,
    conditions: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """GEE cross-check of the GLMM: Binomial, exchangeable, clustered on question_id.

    Coefficients are population-averaged (attenuated relative to the GLMM's
    conditional ones) and the robust SEs treat models as fixed. Falls back to a
    Binomial GLM with question-clustered SEs when the GEE fails to converge.
    """
    z = _z(alpha)

    def fit(qd: _QData) -> tuple[list[dict[str, Any]], str]:
        groups = pd.factorize(qd.frame["question_id"])[0]
        notes = [qd.note, "robust SEs clustered on question (models fixed)"]
        fitted = None
        method = GEE_EXCHANGEABLE
        try:
            with _captured() as msgs:
                gee = sm.GEE(
                    qd.y,
                    qd.X,
                    groups=groups,
                    family=sm.families.Binomial(),
                    cov_struct=sm.cov_struct.Exchangeable(),
                )
                res = gee.fit(maxiter=100)
            if bool(getattr(res, "converged", True)) and np.all(np.isfinite(res.bse)):
                fitted = res
            else:
                notes.append(f"GEE did not converge ({'; '.join(msgs)})")
        except (np.linalg.LinAlgError, ValueError) as exc:
            notes.append(f"GEE failed ({type(exc).__name__}: {exc})")
        if fitted is None:
            method = GLM_CLUSTER_QUESTION
            try:
                with _captured() as msgs:
                    glm = sm.GLM(qd.y, qd.X, family=sm.families.Binomial())
                    res = glm.fit(cov_type="cluster", cov_kwds={"groups": groups})
                if np.all(np.isfinite(res.bse)) and np.all(np.isfinite(res.params)):
                    fitted = res
                else:
                    notes.append(f"GLM fallback gave NaN ({'; '.join(msgs)})")
            except (np.linalg.LinAlgError, ValueError) as exc:
                notes.append(f"GLM fallback failed ({type(exc).__name__}: {exc})")
        note = _join(*notes)
        if fitted is None:
            return [], note
        rows = []
        for j, name in enumerate(qd.names):
            b, se = float(fitted.params[j]), float(fitted.bse[j])
            rows.append(
                _term_row(
                    method,
                    name,
                    b,
                    se,
                    (b - z * se, b + z * se),
                    p=float(fitted.pvalues[j]),
                    fallback=method != GEE_EXCHANGEABLE,
                    note=note,
                )
            )
        return rows, note

    return _question_fits(tidy, outcomes, conditions, "logit (population-averaged)", fit)


def fit_question_models(
    tidy: pd.DataFrame,
    outcomes: Sequence[str] | None = None,
    conditions: Sequence[str] | None = None,
    seed: int = 0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """GLMM and GEE rows together, so each fixed effect has its cross-check beside it."""
    glmm = fit_question_glmm(tidy, outcomes, conditions, seed=seed, alpha=alpha)
    gee = fit_question_gee(tidy, outcomes, conditions, alpha=alpha)
    return pd.concat([glmm, gee], ignore_index=True)


# ------------------------------------------------------------ variance decomposition


def variance_decomposition(
    metrics: pd.DataFrame,
    metric_cols: Sequence[str] | None = None,
    include_size: bool = False,
) -> pd.DataFrame:
    """Share of each metric's variance due to condition vs family (type II SS / total SS).

    ``metric ~ C(condition) + C(family) [+ log10(params)]``; shares use type II
    sums of squares over the total SS. In a balanced panel (every model in every
    condition) the factors are orthogonal and condition + family + residual = 1;
    otherwise the overlap goes to ``share_shared`` so the row still sums to 1. A
    factor with a single level explains nothing by construction (share 0, noted).
    """
    cols = [m for m in (metric_cols or ALL_METRICS) if m in metrics.columns]
    rows: list[dict[str, Any]] = []
    for metric in cols:
        d = metrics[["condition", "family", "params_b", metric]].dropna()
        d = d.rename(columns={metric: "y", "condition": "cond", "family": "fam"})
        d["lp"] = _log10p(d["params_b"])
        ss_total = float(((d["y"] - d["y"].mean()) ** 2).sum())
        n_cond, n_fam = d["cond"].nunique(), d["fam"].nunique()
        base = {
            "metric": metric,
            "n_obs": len(d),
            "n_conditions": n_cond,
            "n_families": n_fam,
            "ss_total": ss_total,
        }
        notes = []
        if len(d) < 3 or not ss_total > 0:
            why = "fewer than 3 rows" if len(d) < 3 else "zero total variance"
            rows.append(_nan_row(VARIANCE_COLUMNS, **base, note=f"{why}: shares not defined"))
            continue
        terms = []
        if n_cond > 1:
            terms.append("C(cond)")
        else:
            notes.append("condition has one level: share 0 by construction")
        if n_fam > 1:
            terms.append("C(fam)")
        else:
            notes.append("family has one level: share 0 by construction")
        if include_size:
            if d["lp"].nunique() > 1:
                terms.append("lp")
            else:
                notes.append("one model size: size share 0 by construction")
        shares = {"C(cond)": 0.0, "C(fam)": 0.0, "lp": 0.0}
        ss_resid = ss_total
        if terms:
            # Type-II sums of squares as SSR(without term) - SSR(full): no F test, so a
            # saturated panel (no residual degrees of freedom) still decomposes.
            with _captured() as msgs:
                fit = smf.ols("y ~ " + " + ".join(terms), data=d).fit()
                for t in terms:
                    rest = [x for x in terms if x != t]
                    reduced = smf.ols("y ~ " + (" + ".join(rest) if rest else "1"), data=d).fit()
                    shares[t] = max(0.0, float(reduced.ssr - fit.ssr)) / ss_total
            if msgs:
                notes.append("; ".join(msgs))
            if fit.df_resid <= 0:
                notes.append("saturated: no residual degrees of freedom")
            ss_resid = float(fit.ssr)
        share_resid = ss_resid / ss_total
        named = shares["C(cond)"] + shares["C(fam)"] + shares["lp"] + share_resid
        rows.append(
            {
                **base,
                "share_condition": shares["C(cond)"],
                "share_family": shares["C(fam)"],
                "share_size": shares["lp"] if include_size else np.nan,
                "share_residual": share_resid,
                "share_shared": 1.0 - named,
                "note": _join(*notes),
            }
        )
    return pd.DataFrame(rows, columns=VARIANCE_COLUMNS)


# --------------------------------------------------------------------- simulation

#: default fixed slopes (per decade of parameters, proportion units) and the
#: metric at the panel's central size (~18B), per metric and condition.
DEFAULT_SLOPES: dict[str, dict[str, float]] = {
    "accuracy": {CLOSED_BOOK: 0.06, CLEAN_EVIDENCE: 0.015, STANDARD_RAG: 0.045},
    "high_risk_rate": {CLOSED_BOOK: -0.02, CLEAN_EVIDENCE: -0.004, STANDARD_RAG: -0.015},
    "unsafe_rate": {CLOSED_BOOK: -0.015, CLEAN_EVIDENCE: -0.003, STANDARD_RAG: -0.012},
    "contradiction_rate": {CLOSED_BOOK: -0.025, CLEAN_EVIDENCE: -0.004, STANDARD_RAG: -0.02},
    "dangerous_overconfidence_rate": {
        CLOSED_BOOK: -0.01,
        CLEAN_EVIDENCE: -0.002,
        STANDARD_RAG: -0.008,
    },
}
DEFAULT_LEVELS: dict[str, dict[str, float]] = {
    "accuracy": {CLOSED_BOOK: 0.735, CLEAN_EVIDENCE: 0.94, STANDARD_RAG: 0.80},
    "high_risk_rate": {CLOSED_BOOK: 0.12, CLEAN_EVIDENCE: 0.026, STANDARD_RAG: 0.08},
    "unsafe_rate": {CLOSED_BOOK: 0.10, CLEAN_EVIDENCE: 0.02, STANDARD_RAG: 0.07},
    "contradiction_rate": {CLOSED_BOOK: 0.127, CLEAN_EVIDENCE: 0.023, STANDARD_RAG: 0.09},
    "dangerous_overconfidence_rate": {
        CLOSED_BOOK: 0.08,
        CLEAN_EVIDENCE: 0.016,
        STANDARD_RAG: 0.05,
    },
}


@dataclass
class SimTruth:
    """What :func:`simulate_panel` put in: fixed slopes, expected metrics, settings."""

    slopes: pd.DataFrame  # metric, condition, slope, level, center_log10_params
    expected: pd.DataFrame  # model, family, params_b, condition, <metric> = true rate
    settings: dict[str, Any] = field(default_factory=dict)
    n_clipped: int = 0


def _lookup(table: Mapping[str, Any], metric: str, cond: str, default: float) -> float:
    v = table.get(metric, default)
    if isinstance(v, Mapping):
        return float(v.get(cond, default))
    return float(v)


def _calibrate_logit(p: np.ndarray, zq: np.ndarray, iters: int = 50) -> np.ndarray:
    """eta per cell with mean_q expit(eta + z_q) = p: keeps model-level rates linear."""
    eta = np.log(p / (1 - p))
    for _ in range(iters):
        pr = 1 / (1 + np.exp(-(eta[:, None] + zq[None, :])))
        f = pr.mean(1) - p
        g = (pr * (1 - pr)).mean(1)
        step = f / np.maximum(g, 1e-12)
        eta = eta - step
        if np.max(np.abs(step)) < 1e-10:
            break
    return eta


def simulate_panel(
    n_models: int = 34,
    n_families: int = 7,
    n_questions: int = 200,
    conditions: Sequence[str] = (CLOSED_BOOK, CLEAN_EVIDENCE, STANDARD_RAG),
    slopes: Mapping[str, Any] | None = None,
    levels: Mapping[str, Any] | None = None,
    metrics: Sequence[str] = ALL_METRICS,
    params_range: tuple[float, float] = (0.5, 675.0),
    sd_family: float = 0.03,
    sd_family_slope: float = 0.01,
    sd_model: float = 0.02,
    sd_cell: float = 0.01,
    sd_question: float = 1.0,
    rho: float = 0.6,
    seed: int = 0,
) -> tuple[pd.DataFrame, SimTruth]:
    """Simulate a tidy labels table with known model-level scaling slopes.

    Expected metric of model m (family f) in condition c, metric k:
    ``p = level_kc + (b_kc + v_fk) x_m + u_fk + w_mk + e_mck`` with x the centred
    log10(params) and family intercepts u / slopes v, model effects w and cell
    noise e all scaled by 2*sqrt(level(1-level)) (floor/ceiling-aware spread).
    Each cell's question-level 0/1 outcomes use a logistic link with question
    effects, calibrated so their mean over questions equals p exactly, so the
    model-level metric is linear in log10(params) with fixed slope b_kc. Effects
    are correlated across metrics (``rho``; accuracy opposite to the error rates).
    Outcome columns are simulated independently: the rule "a safety error is a
    wrong answer" is not enforced; the panel is for testing statistics.
    """
    rng = np.random.default_rng(seed)
    slopes = DEFAULT_SLOPES if slopes is None else slopes
    levels = DEFAULT_LEVELS if levels is None else levels
    conds = list(conditions)
    fam_of = np.arange(n_models) % n_families
    fam_names = [f"fam{j + 1}" for j in range(n_families)]
    lo, hi = np.log10(params_range[0]), np.log10(params_range[1])
    logp = rng.uniform(lo, hi, n_models)
    params_b = np.round(10**logp, 3)
    logp = np.log10(params_b)
    center = (lo + hi) / 2
    x = logp - center
    names = [
        f"{fam_names[f]}-m{i:02d}-{p:g}b"
        for i, (f, p) in enumerate(zip(fam_of, params_b, strict=True))
    ]
    qids = [f"q{j:03d}" for j in range(n_questions)]
    sign = {m: (1.0 if m == ACCURACY else -1.0) for m in metrics}

    def corr_draw(size: tuple[int, ...]) -> dict[str, np.ndarray]:
        shared = rng.standard_normal(size)
        return {
            m: sign[m] * (np.sqrt(rho) * shared + np.sqrt(1 - rho) * rng.standard_normal(size))
            for m in metrics
        }

    u = corr_draw((n_families,))
    v = corr_draw((n_families,))
    w = corr_draw((n_models,))
    qz = corr_draw((n_questions,))
    frames, truth_rows, expected = [], [], []
    n_clipped = 0
    for c in conds:
        cell = {"model": names, "family": [fam_names[f] for f in fam_of], "params_b": params_b}
        exp_c = pd.DataFrame({**cell, "condition": c})
        out_c = pd.DataFrame(
            {
                "model": np.repeat(names, n_questions),
                "family": np.repeat([fam_names[f] for f in fam_of], n_questions),
                "params_b": np.repeat(params_b, n_questions),
                "condition": c,
                "question_id": np.tile(qids, n_models),
            }
        )
        for m in metrics:
            lev = _lookup(levels, m, c, 0.5 if m == ACCURACY else 0.05)
            b = _lookup(slopes, m, c, 0.0)
            s = 2 * np.sqrt(lev * (1 - lev))
            p = (
                lev
                + (b + sd_family_slope * s * v[m][fam_of]) * x
                + s * (sd_family * u[m][fam_of] + sd_model * w[m])
                + s * sd_cell * rng.standard_normal(n_models)
            )
            clipped = (p < 0.002) | (p > 0.998)
            n_clipped += int(clipped.sum())
            p = np.clip(p, 0.002, 0.998)
            eta = _calibrate_logit(p, sd_question * qz[m])
            prob = 1 / (1 + np.exp(-(eta[:, None] + sd_question * qz[m][None, :])))
            y = (rng.random(prob.shape) < prob).astype(int)
            out_c[METRIC_TO_OUTCOME.get(m, m)] = y.ravel()
            exp_c[m] = p
            truth_rows.append(
                {
                    "metric": m,
                    "condition": c,
                    "slope": b,
                    "level": lev,
                    "center_log10_params": center,
                }
            )
        frames.append(out_c)
        expected.append(exp_c)
    tidy = pd.concat(frames, ignore_index=True)
    tidy["status"] = "ok"
    truth = SimTruth(
        slopes=pd.DataFrame(truth_rows),
        expected=pd.concat(expected, ignore_index=True),
        settings={
            "n_models": n_models,
            "n_families": n_families,
            "n_questions": n_questions,
            "conditions": conds,
            "params_range": params_range,
            "sd_family": sd_family,
            "sd_family_slope": sd_family_slope,
            "sd_model": sd_model,
            "sd_cell": sd_cell,
            "sd_question": sd_question,
            "rho": rho,
            "seed": seed,
        },
        n_clipped=n_clipped,
    )
    return tidy, truth


@dataclass
class RecoveryResult:
    """Coverage of the true fixed slopes by the model-level 95% CIs."""

    coverage: float
    per_fit: pd.DataFrame  # one row per (rep, metric, condition)
    summary: pd.DataFrame  # per (metric, condition): coverage, bias, se vs sd, methods


def parameter_recovery(
    reps: int = 20,
    seed: int = 0,
    metric_cols: Sequence[str] = (ACCURACY, "high_risk_rate"),
    by_condition: bool = False,
    alpha: float = 0.05,
    **sim_kwargs: Any,
) -> RecoveryResult:
    """Simulate ``reps`` panels, fit :func:`fit_scaling_slopes`, count CIs covering truth.

    Not-estimable rows are excluded from coverage and counted in the summary;
    every fallback method is kept (coverage is of what the pipeline reports).
    """
    rows = []
    for r in range(reps):
        tidy, truth = simulate_panel(seed=seed + r, **sim_kwargs)
        met = model_metrics(tidy)
        fit = fit_scaling_slopes(
            met, metric_cols, tidy=tidy, by_condition=by_condition, alpha=alpha
        )
        fit = fit.merge(
            truth.slopes[["metric", "condition", "slope"]].rename(columns={"slope": "true_slope"}),
            on=["metric", "condition"],
        )
        fit["rep"] = r
        covered = (fit["ci_low"] <= fit["true_slope"]) & (fit["true_slope"] <= fit["ci_high"])
        fit["covered"] = covered.astype(float).where(fit["method"] != NOT_ESTIMABLE)
        rows.append(fit)
    per_fit = pd.concat(rows, ignore_index=True)
    est = per_fit[per_fit["method"] != NOT_ESTIMABLE]
    summary = (
        per_fit.assign(err=per_fit["slope"] - per_fit["true_slope"])
        .groupby(["metric", "condition"], sort=False)
        .agg(
            true_slope=("true_slope", "first"),
            coverage=("covered", "mean"),
            mean_bias=("err", "mean"),
            mean_se=("se", "mean"),
            sd_slope=("slope", "std"),
            n_not_estimable=("method", lambda s: int((s == NOT_ESTIMABLE).sum())),
            methods=(
                "method",
                lambda s: ", ".join(f"{k}:{v}" for k, v in s.value_counts().items()),
            ),
        )
        .reset_index()
    )
    coverage = float(est["covered"].mean()) if len(est) else np.nan
    return RecoveryResult(coverage=coverage, per_fit=per_fit, summary=summary)
