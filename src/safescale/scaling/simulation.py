"""Simulated panels with known slopes, and the recovery of those slopes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from safescale.conditions import (
    CLEAN_EVIDENCE,
    CLOSED_BOOK,
    STANDARD_RAG,
)
from safescale.scaling.common import (
    ACCURACY,
    ALL_METRICS,
    METRIC_TO_OUTCOME,
    NOT_ESTIMABLE,
    model_metrics,
)
from safescale.scaling.slopes import fit_scaling_slopes

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
    family_size_sd: float | None = None,
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
    ``family_size_sd`` (log10 units) gives each family a typical size, with model
    sizes scattered around it: the stress case where family and size are confounded.
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
    if family_size_sd is None:
        logp = rng.uniform(lo, hi, n_models)
    else:  # families with typical sizes: size and family are confounded
        centre = rng.uniform(lo, hi, n_families)
        logp = np.clip(centre[fam_of] + family_size_sd * rng.standard_normal(n_models), lo, hi)
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
            "family_size_sd": family_size_sd,
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
        fit = fit_scaling_slopes(met, metric_cols, by_condition=by_condition, alpha=alpha)
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
