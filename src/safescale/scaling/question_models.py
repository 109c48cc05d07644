"""Question-level models: a binomial GLM with a two-way (model x question) bootstrap,
and a binomial GLMM (variational Bayes) for the conditional effects and variances.

The fixed effects are the same for both: centred log10(params), condition, their
interaction (one slope per condition, as a difference from the reference
condition) and, where the panel identifies it, family. Only the bootstrap fit
prints intervals: its coverage is measured on simulated panels (docs/SCALING.md);
the VB posterior SD is about half the sampling SD there, so it is printed as a
posterior SD with no interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

from safescale.analysis.bootstrap import resample_indices
from safescale.conditions import ordered_conditions
from safescale.scaling.common import (
    GLM_CLUSTER_BOOTSTRAP,
    GLMM_VB,
    LPM_CLUSTER_BOOTSTRAP,
    MIN_RESIDUAL_DF,
    NOT_ESTIMABLE,
    OUTCOME_TO_METRIC,
    QUESTION_COLUMNS,
    captured,
    join_notes,
    log10_params,
    nan_row,
    t_interval,
)

LINKS: dict[str, tuple[str, str]] = {
    "logit": (GLM_CLUSTER_BOOTSTRAP, "logit (population-averaged)"),
    "identity": (LPM_CLUSTER_BOOTSTRAP, "probability (linear)"),
}
IRLS_MAX_ITER = 50
QUESTIONS_RESAMPLED = False
#: interquartile range of a normal distribution in SDs: a scale robust to the few
#: wild replicates a pairs bootstrap of a handful of units produces.
IQR_PER_SD = 1.3489795


@dataclass
class _QData:
    """Question-level design: one row per (model, condition, question)."""

    y: np.ndarray
    X: np.ndarray
    names: list[str]
    frame: pd.DataFrame
    note: str
    model_df: int  # model-level residual df of the log10(params) terms


def _family_identified(t: pd.DataFrame) -> str:
    """'' when family effects can be told apart from model and size, else the reason."""
    models = t.drop_duplicates("model")
    if models["family"].nunique() < 2:
        return "one family"
    if (models.groupby("family")["params_b"].nunique() < 2).all():
        return "no family has two sizes (family = model)"
    return ""


def _question_design(
    tidy: pd.DataFrame,
    outcome: str,
    conditions: Sequence[str] | None,
    family: bool,
    min_df: int,
) -> tuple[_QData | None, str]:
    """Intercept, centred log10(params), condition, log10(params) x condition, family."""
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
    n_models = t["model"].nunique()
    n_families = t["family"].nunique()
    if family:
        why = _family_identified(t)
        if not why and n_models - n_families - 1 < min_df:
            why = f"{n_models - n_families - 1} model df with family effects (< {min_df})"
        if why:
            notes.append(f"family left out: {why}")
            family = False
    model_df = n_models - (n_families + 1 if family else 2)
    conds = ordered_conditions(t["condition"].unique())
    x = log10_params(t["params_b"])
    xc = x - x.mean()
    cols, names = [np.ones(len(t)), xc], ["Intercept", "log10_params"]
    for c in conds[1:]:
        ind = (t["condition"] == c).to_numpy(float)
        cols += [ind, ind * xc]
        names += [f"condition[T.{c}]", f"log10_params:condition[T.{c}]"]
    if family:
        fams = sorted(t["family"].unique())
        for f in fams[1:]:
            cols.append((t["family"] == f).to_numpy(float))
            names.append(f"family[T.{f}]")
    return (
        _QData(
            y=t[outcome].to_numpy(float),
            X=np.column_stack(cols),
            names=names,
            frame=t,
            note=join_notes(*notes),
            model_df=model_df,
        ),
        "",
    )


def _term_row(method: str, term: str, estimate: float, se: float, **extra: Any) -> dict[str, Any]:
    """One fitted fixed effect or variance component of a question-level model."""
    row = {"method": method, "term": term, "estimate": estimate, "se": se}
    row.update(ci_low=np.nan, ci_high=np.nan, p=np.nan, converged=True, fallback=False)
    row.update(extra)
    return row


def _question_fits(
    tidy: pd.DataFrame,
    outcomes: Sequence[str] | None,
    scale: str,
    design: Callable[[str], tuple[_QData | None, str]],
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
        qd, why = design(outcome)
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


# ------------------------------------------------------- GLM, two-way bootstrap


def _cell_glm(
    X: np.ndarray, hits: np.ndarray, trials: np.ndarray, link: str, start: np.ndarray | None
) -> np.ndarray:
    """Binomial GLM (logit) or least squares (identity) on cell totals, by IRLS.

    The fixed effects are constant within a (model, condition) cell, so the
    independence GLM over question rows equals this fit on cell totals. NaN when
    IRLS does not converge (for example a replicate that separates).
    """
    keep = trials > 0
    X, hits, trials = X[keep], hits[keep], trials[keep]
    if link == "identity":
        w = trials
        return np.linalg.lstsq(X.T @ (w[:, None] * X), X.T @ hits, rcond=None)[0]
    rate = hits / trials
    beta = np.zeros(X.shape[1]) if start is None else start.copy()
    for _ in range(IRLS_MAX_ITER):
        eta = np.clip(X @ beta, -30, 30)
        mu = 1 / (1 + np.exp(-eta))
        v = np.maximum(mu * (1 - mu), 1e-10)
        z = eta + (rate - mu) / v
        w = trials * v
        new = np.linalg.lstsq(X.T @ (w[:, None] * X), X.T @ (w * z), rcond=None)[0]
        if np.max(np.abs(new - beta)) < 1e-8:
            return new
        beta = new
    return np.full(X.shape[1], np.nan)


def fit_question_bootstrap(
    tidy: pd.DataFrame,
    outcomes: Sequence[str] | None = None,
    conditions: Sequence[str] | None = None,
    link: str = "logit",
    include_family: bool = True,
    B: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    min_df: int = MIN_RESIDUAL_DF,
    resample_questions: bool = QUESTIONS_RESAMPLED,
) -> pd.DataFrame:
    """Question-level GLM with a cluster bootstrap over families (and questions).

    ``outcome ~ log10(params) * condition [+ family]`` (population-averaged; ``link``
    "logit" or "identity" for the linear probability model, whose log10 terms
    equal the model-level slopes). Each replicate resamples models and questions
    independently (``resample_indices``, seeds ``seed`` and ``seed + 1``) and
    refits; the SE is the replicates' SD times sqrt(M / (M - 1)) (M models), and
    the CI and p come from t(model df), the df a model-level slope has. Below
    ``min_df`` model df the outcome is not estimable.
    """
    if link not in LINKS:
        raise ValueError(f"link must be one of {sorted(LINKS)}, got {link!r}")
    method, scale = LINKS[link]

    def design(outcome: str) -> tuple[_QData | None, str]:
        return _question_design(tidy, outcome, conditions, include_family, min_df)

    def fit(qd: _QData) -> tuple[list[dict[str, Any]], str]:
        if qd.model_df < min_df:
            n = qd.frame["model"].nunique()
            return [], join_notes(qd.note, f"{n} models, {qd.model_df} model df (< {min_df})")
        f = qd.frame
        keys = f.groupby(["model", "condition"], sort=False, observed=True)
        cell = keys.ngroup().to_numpy()
        n_cells = int(cell.max()) + 1
        first_row = np.unique(cell, return_index=True)[1]
        family_of_cell, families = pd.factorize(f["family"].to_numpy()[first_row])
        question, questions = pd.factorize(f["question_id"])
        X = np.zeros((n_cells, qd.X.shape[1]))
        X[cell] = qd.X  # constant within a cell
        hits = np.zeros((n_cells, len(questions)))
        hits[cell, question] = qd.y
        seen = np.zeros_like(hits)
        seen[cell, question] = 1.0
        point = _cell_glm(X, hits.sum(1), seen.sum(1), link, None)
        if not np.all(np.isfinite(point)):
            return [], join_notes(qd.note, "GLM did not converge on the full data")
        wq = np.ones((B, len(questions)))
        if resample_questions:
            for b, idx in enumerate(resample_indices(len(questions), B, seed)):
                wq[b] = np.bincount(idx, minlength=len(questions))
        # Families are the independent units (models of one family share more than
        # size); a family drawn twice counts twice, which with family fixed effects
        # equals two relabelled copies.
        n_fam = len(families)
        wf = np.stack(
            [np.bincount(idx, minlength=n_fam) for idx in resample_indices(n_fam, B, seed + 1)]
        ).astype(float)
        hits_b, seen_b = hits @ wq.T, seen @ wq.T  # cells x B
        draws = np.full((B, len(point)), np.nan)
        with captured():
            for b in range(B):
                w = wf[b, family_of_cell]
                draws[b] = _cell_glm(X, hits_b[:, b] * w, seen_b[:, b] * w, link, point)
        ok = np.isfinite(draws).all(1)
        q25, q75 = np.percentile(draws[ok], [25, 75], axis=0)
        se = (q75 - q25) / IQR_PER_SD * np.sqrt(n_fam / (n_fam - 1))
        df = min(qd.model_df, n_fam - 1)
        units = "families x questions" if resample_questions else "families"
        interval = f"t({df}) with cluster-bootstrap SE ({units}, B={B})"
        failed = f"{B - int(ok.sum())} of {B} replicates did not converge" if not ok.all() else ""
        note = join_notes(qd.note, failed)
        rows = []
        for j, name in enumerate(qd.names):
            lo, hi, p = t_interval(point[j], se[j], df, alpha)
            rows.append(
                _term_row(
                    method,
                    name,
                    float(point[j]),
                    float(se[j]),
                    ci_low=lo,
                    ci_high=hi,
                    p=p,
                    df=df,
                    interval=interval,
                    note=note,
                )
            )
        return rows, note

    return _question_fits(tidy, outcomes, scale, design, fit)


# ------------------------------------------------------------------ GLMM (VB)


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


def fit_question_glmm(
    tidy: pd.DataFrame,
    outcomes: Sequence[str] | None = None,
    conditions: Sequence[str] | None = None,
    include_family: bool = True,
    seed: int = 0,
    fe_prior_sd: float = 2.0,
    vc_prior_sd: float = 1.0,
) -> pd.DataFrame:
    """Binomial GLMM per 0/1 outcome: logit P = log10(params) * condition + u_q + v_m (+ w_f).

    Crossed random intercepts for question and model, plus family where some
    family has two models, fitted by mean-field variational Bayes
    (``BinomialBayesMixedGLM.fit_vb``). Reports posterior means and SDs and the
    random-effect SDs; no intervals or p-values, because the mean-field SD of a
    model-level term is about half its sampling SD (docs/SCALING.md). A fit whose
    optimiser did not converge (after one retry) is not estimable.
    """
    interval = "none: VB posterior SD (mean-field), about half the sampling SD"

    def design(outcome: str) -> tuple[_QData | None, str]:
        return _question_design(tidy, outcome, conditions, False, MIN_RESIDUAL_DF)

    def fit(qd: _QData) -> tuple[list[dict[str, Any]], str]:
        factors = [("question", "question_id"), ("model", "model")]
        per_family = qd.frame.drop_duplicates("model").groupby("family").size()
        if include_family and per_family.size > 1 and per_family.max() > 1:
            factors.append(("family", "family"))
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
            return [], join_notes(*notes, "see the bootstrap GLM rows")
        note = join_notes(*notes)
        rows = [
            _term_row(GLMM_VB, name, float(m), float(s), interval=interval, note=note)
            for name, m, s in zip(qd.names, res.fe_mean, res.fe_sd, strict=True)
        ]
        rows += [
            _term_row(
                GLMM_VB,
                f"sd({name})",
                float(np.exp(m)),
                np.nan,
                interval="none: exp of the posterior mean of the log-SD",
                note=note,
            )
            for name, m in zip(vcp_names, res.vcp_mean, strict=True)
        ]
        return rows, note

    return _question_fits(tidy, outcomes, "logit (conditional)", design, fit)


def fit_question_models(
    tidy: pd.DataFrame,
    outcomes: Sequence[str] | None = None,
    conditions: Sequence[str] | None = None,
    seed: int = 0,
    B: int = 200,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Bootstrap GLM rows (the inference) and GLMM rows (conditional effects, variances)."""
    boot = fit_question_bootstrap(tidy, outcomes, conditions, B=B, seed=seed, alpha=alpha)
    glmm = fit_question_glmm(tidy, outcomes, conditions, seed=seed)
    return pd.concat([boot, glmm], ignore_index=True)
