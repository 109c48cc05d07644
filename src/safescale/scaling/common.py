"""Names, table columns and helpers shared by every scaling fit."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.regression.mixed_linear_model import MixedLM

from safescale.analysis.labeling import answered
from safescale.analysis.metrics import METRICS

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
PAIRED_BOOTSTRAP = "paired_bootstrap_questions"
GLMM_VB = "glmm_vb"
GLM_CLUSTER_BOOTSTRAP = "glm_cluster_bootstrap"
LPM_CLUSTER_BOOTSTRAP = "lpm_cluster_bootstrap"

#: fewest residual degrees of freedom a printed interval or test may rest on: with 1 df
#: a 95% CI is +/- 12.7 SE, with 2 df +/- 4.3 SE; below this a fit is not estimable.
MIN_RESIDUAL_DF = 3

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
    "p_holm",
    "p_bh",
    "df",
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
    "p_holm",
    "p_bh",
    "df",
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
    "p_holm",
    "p_bh",
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
    "df",
    "interval",
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
    "share_condition_low",
    "share_condition_high",
    "share_family_low",
    "share_family_high",
    "share_size_low",
    "share_size_high",
    "B",
    "note",
]


@contextmanager
def captured() -> Iterator[list[str]]:
    """Collect warnings as text so fits never print, but their problems are kept."""
    msgs: list[str] = []
    with warnings.catch_warnings(record=True) as rec, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        yield msgs
    for w in rec:
        text = f"{w.category.__name__}: {str(w.message).strip()}"
        if text not in msgs:
            msgs.append(text)


def t_interval(
    estimate: float, se: float, df: float, alpha: float = 0.05
) -> tuple[float, float, float]:
    """(ci_low, ci_high, p) from one t(df) reference distribution, so a CI excludes 0
    exactly when p < alpha; df = inf gives the normal (Wald) interval."""
    if not (np.isfinite(estimate) and np.isfinite(se) and se > 0 and df > 0):
        return np.nan, np.nan, np.nan
    dist = stats.t(df) if np.isfinite(df) else stats.norm()
    half = float(dist.ppf(1 - alpha / 2)) * se
    return estimate - half, estimate + half, float(2 * dist.sf(abs(estimate / se)))


def t_estimate(estimate: float, se: float, df: float, alpha: float = 0.05) -> dict[str, float]:
    """The columns every t-based estimate row prints: slope, se, its t(df) interval, p, df."""
    lo, hi, p = t_interval(estimate, se, df, alpha)
    return {"slope": estimate, "se": se, "ci_low": lo, "ci_high": hi, "p": p, "df": df}


def percentile_interval(draws: np.ndarray, alpha: float = 0.05) -> tuple[float, float, float]:
    """(ci_low, ci_high, p) of bootstrap draws of an estimate, tested against 0.

    p = 2 (k + 1) / (B + 1) with k the smaller tail count (never 0), and the CI is
    the pair of order statistics d_(j), d_(B+1-j) with j = floor(alpha (B + 1) / 2).
    For integer k, k <= alpha (B + 1) / 2 - 1 exactly when k < j, so the CI
    excludes 0 exactly when p <= alpha: interval and test cannot disagree.
    """
    d = np.sort(np.asarray(draws, dtype=float)[np.isfinite(draws)])
    if d.size == 0:
        return np.nan, np.nan, np.nan
    tail = min(int((d <= 0).sum()), int((d >= 0).sum()))
    p = min(1.0, 2 * (tail + 1) / (d.size + 1))
    j = int(np.floor(alpha * (d.size + 1) / 2))
    if j < 1:  # too few draws for this alpha: the interval is unbounded
        return -np.inf, np.inf, p
    return float(d[j - 1]), float(d[d.size - j]), p


def log10_params(params_b: pd.Series | np.ndarray) -> np.ndarray:
    return np.log10(np.asarray(params_b, dtype=float))


def join_notes(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def nan_row(columns: Sequence[str], **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(columns, np.nan)
    row.update(values)
    return row


def panel_info(d: pd.DataFrame) -> dict[str, int]:
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
    """Per-(model, condition) metric table from a tidy labels table.

    Each rate is computed by its definition in ``analysis.metrics.METRICS`` (the one
    the pipeline's metrics table uses), so simulated panels, which carry only the
    0/1 outcome columns, get exactly the rates a real run would report. Skipped rows
    leave every denominator (a cell of skipped rows leaves the table). Cells keep the
    order in which they first appear.
    """
    tidy = answered(tidy)
    outs = [o for o in (outcomes or OUTCOME_TO_METRIC) if o in tidy.columns]
    keys = ["model", "family", "params_b", "condition"]
    if tidy.duplicated(["model", "condition", "question_id"]).any():
        raise ValueError("duplicate (model, condition, question_id) rows in the tidy table")
    cell = tidy.groupby(keys, sort=False, observed=True).ngroup().to_numpy()
    question = pd.factorize(tidy["question_id"])[0]
    grouped = tidy.groupby(keys, sort=False, observed=True)
    out = grouped["question_id"].nunique().rename("n_questions").reset_index()
    shape = (question.max() + 1 if len(question) else 0, len(out))
    for outcome in outs:
        metric = METRICS[OUTCOME_TO_METRIC[outcome]]
        grid = np.full(shape, np.nan)
        grid[question, cell] = pd.to_numeric(tidy[outcome], errors="coerce").to_numpy(float)
        inputs = metric.inputs({outcome: grid})
        sums = {name: values.sum(axis=0, keepdims=True) for name, values in inputs.items()}
        out.insert(len(keys) + outs.index(outcome), metric.name, metric.combine(sums)[0])
    return out


MIXEDLM_OPTIMIZERS: tuple[str, ...] = ("bfgs", "powell", "nm", "lbfgs")


def fit_mixedlm(mod: MixedLM) -> tuple[Any, list[str], str]:
    """Try optimisers in turn (lbfgs can step into a singular region and raise).

    Returns the first converged result (or the last one obtained), its captured
    warnings, and a note naming optimisers that failed before it.
    """
    failed: list[str] = []
    last: tuple[Any, list[str]] = (None, [])
    for meth in MIXEDLM_OPTIMIZERS:
        try:
            with captured() as msgs:
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


def mixedlm_problems(res: Any, msgs: list[str], idx: Sequence[int]) -> list[str]:
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


def ols_fit(y: np.ndarray, X: np.ndarray, k: int, cluster: np.ndarray | None = None) -> tuple:
    """OLS slope (column k), SE and p; cluster-robust when ``cluster`` is given."""
    with captured():
        if cluster is None:
            res = sm.OLS(y, X).fit()
        else:
            res = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": cluster})
        return float(res.params[k]), float(res.bse[k]), float(res.pvalues[k]), res


def mixed_gate(info: dict[str, int], min_families: int) -> str:
    if info["n_families"] < min_families:
        return f"fewer than {min_families} families ({info['n_families']})"
    if info["max_models_per_family"] < 2:
        return "one model per family: family effect confounded with the model itself"
    return ""
