"""Question-level models: binomial GLMM (variational Bayes) and GEE."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import sparse
from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

from safescale.conditions import (
    ordered_conditions,
)
from safescale.scaling.common import (
    GEE_EXCHANGEABLE,
    GLM_CLUSTER_QUESTION,
    GLMM_VB,
    NOT_ESTIMABLE,
    OUTCOME_TO_METRIC,
    QUESTION_COLUMNS,
    captured,
    join_notes,
    log10_params,
    nan_row,
    z_quantile,
)


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
    conds = ordered_conditions(t["condition"].unique())
    x = log10_params(t["params_b"])
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
            note=join_notes(*notes),
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
            rows.append(nan_row(QUESTION_COLUMNS, **common, **not_estimable, n_obs=0, note=why))
            continue
        n_info = {
            "n_obs": len(qd.frame),
            "n_models": qd.frame["model"].nunique(),
            "n_questions": qd.frame["question_id"].nunique(),
        }
        fitted, note = fit(qd)
        if not fitted:
            rows.append(nan_row(QUESTION_COLUMNS, **common, **n_info, **not_estimable, note=note))
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
    z = z_quantile(alpha)
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
            with captured() as msgs:
                try:
                    cand = model.fit_vb(rng=seed, fit_method=meth)
                except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
                    cand = None
                    msgs.append(f"{type(exc).__name__}: {exc}")
            ok, why = _vb_converged(cand)
            if ok:
                res = cand
                if attempt or why:
                    notes.append(join_notes(f"VB converged with {meth}", why))
                break
            notes.append(f"VB with {meth} did not converge ({why}; {'; '.join(msgs)})")
        if res is None:
            return [], join_notes(*notes, "see GEE rows for a cross-check")
        note = join_notes(*notes, "VB posterior: Gaussian mean-field, intervals approximate")
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
    z = z_quantile(alpha)

    def fit(qd: _QData) -> tuple[list[dict[str, Any]], str]:
        groups = pd.factorize(qd.frame["question_id"])[0]
        notes = [qd.note, "robust SEs clustered on question (models fixed)"]
        fitted = None
        method = GEE_EXCHANGEABLE
        try:
            with captured() as msgs:
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
                with captured() as msgs:
                    glm = sm.GLM(qd.y, qd.X, family=sm.families.Binomial())
                    res = glm.fit(cov_type="cluster", cov_kwds={"groups": groups})
                if np.all(np.isfinite(res.bse)) and np.all(np.isfinite(res.params)):
                    fitted = res
                else:
                    notes.append(f"GLM fallback gave NaN ({'; '.join(msgs)})")
            except (np.linalg.LinAlgError, ValueError) as exc:
                notes.append(f"GLM fallback failed ({type(exc).__name__}: {exc})")
        note = join_notes(*notes)
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
