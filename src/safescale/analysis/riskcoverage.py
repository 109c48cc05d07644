"""Risk-coverage curves of a confidence gate: the curve, AURC, its oracle bound, coverage at
a target risk and risk at a matched coverage, for one cell or under bootstrap weights.

The gate answers a question iff ``confidence >= threshold``. Questions with equal
confidence are admitted together (tie rule), so a curve has one point per distinct
confidence value and does not depend on row order. ``error`` is a 0/1 vector over *all*
questions; how NULL answers count is decided by the caller (``gate.gate_errors``).
Definitions and how to read them: ``docs/GATE.md``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.special import digamma

DEFAULT_TARGET_RISK = 0.01
DEFAULT_MATCHED_COVERAGE = 0.8
_MATMUL_LIMIT = 250_000  # n x distinct-values cells above which curves use sort + cumsum
_EPS = 1e-12  # tolerance for comparing rates computed as k/n against targets


# --------------------------------------------------------------------------
# Core: weighted step curves (weights = 1 for the estimate, bootstrap counts)
# --------------------------------------------------------------------------


def _as_arrays(confidence: ArrayLike, error: ArrayLike) -> tuple[np.ndarray, ...]:
    """Validate inputs once so every public function fails the same way."""
    conf = np.asarray(confidence, dtype=float)
    err = np.asarray(error, dtype=float)
    if conf.ndim != 1 or conf.shape != err.shape:
        raise ValueError("confidence and error must be 1-d and of equal length")
    if conf.size == 0:
        raise ValueError("need at least one question")
    if np.isnan(conf).any():
        raise ValueError("confidence has NaN; decide how missing confidence is ranked first")
    if not np.isin(err, (0.0, 1.0)).all():
        raise ValueError("error must be 0/1")
    return conf, err


def _weighted_points(
    conf: np.ndarray, errs: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Curve points of the gate "answer iff conf >= threshold" under question weights.

    Returns the distinct thresholds (decreasing, G of them), the answered
    weight (B, G), the errors among the answered (k, B, G) and the total
    weight (B,). ``weights`` is (B, n): a row of ones gives the plain
    estimate, a row of bootstrap counts gives the curve of that resampled
    data set exactly. Tied questions enter together (tie rule), so nothing
    depends on row order. Sums of integer counts in float64 are exact, so both
    code paths below give identical numbers.
    """
    errs = np.atleast_2d(errs)
    thresholds = np.unique(conf)[::-1]
    n, g, k = conf.size, thresholds.size, errs.shape[0]
    if n * g <= _MATMUL_LIMIT:
        # Small cells (the tidy table): one matrix product for all error kinds.
        admitted = (conf[:, None] >= thresholds[None, :]).astype(float)
        mats = np.concatenate([admitted] + [admitted * e[:, None] for e in errs], axis=1)
        prod = weights @ mats
        cum_w = prod[:, :g]
        cum_e = np.stack([prod[:, (j + 1) * g : (j + 2) * g] for j in range(k)])
    else:
        # Large inputs: sort once, sum each tie group, accumulate over groups.
        order = np.argsort(-conf, kind="stable")
        sorted_conf = conf[order]
        starts = np.flatnonzero(np.r_[True, sorted_conf[1:] != sorted_conf[:-1]])
        w = weights[:, order]
        cum_w = np.cumsum(np.add.reduceat(w, starts, axis=1), axis=1)
        cum_e = np.stack(
            [np.cumsum(np.add.reduceat(w * e[order], starts, axis=1), axis=1) for e in errs]
        )
    return thresholds, cum_w, cum_e, cum_w[:, -1]


def _stats(
    cum_w: np.ndarray,
    cum_e: np.ndarray,
    total: np.ndarray,
    thresholds: np.ndarray,
    target: float,
    coverage: float,
) -> dict[str, np.ndarray]:
    """All scalar summaries of (B) step curves at once, vectorised over rows."""
    answered = cum_w > 0  # False only before the first resampled question is admitted
    risk0 = np.divide(cum_e, cum_w, out=np.zeros_like(cum_e), where=answered)
    with np.errstate(invalid="ignore", divide="ignore"):
        # sum_j (c_j - c_{j-1}) r_j with c_j = W_j / W: zero-weight steps add nothing.
        aurc = np.sum(np.diff(cum_w, axis=1, prepend=0.0) * risk0, axis=1) / total
        cov = cum_w / total[:, None]
    n_err = cum_e[:, -1]
    opt = _optimal_aurc_counts(total, n_err)
    ok = answered & (risk0 <= target + _EPS)
    # Coverage is non-decreasing along a curve, so the last point meeting the target
    # has the largest coverage; no such point means coverage 0 and no threshold.
    rows = np.arange(cov.shape[0])
    any_ok = ok.any(axis=1)
    last_ok = cov.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1)
    cov_at = np.where(any_ok, cov[rows, last_ok], 0.0)
    thr_at = np.where(any_ok, thresholds[last_ok], np.nan)
    first_reach = np.argmax(cov >= coverage - _EPS, axis=1)
    risk_at = np.where(answered[rows, first_reach], risk0[rows, first_reach], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        base = n_err / total
    return {
        "aurc": aurc,
        "optimal_aurc": opt,
        "e_aurc": aurc - opt,
        "coverage_at_target": cov_at,
        "threshold_at_target": thr_at,
        "risk_at_coverage": risk_at,
        "base_risk": base,
    }


def _harmonic(k: np.ndarray) -> np.ndarray:
    """H_k = sum_{i<=k} 1/i for real k >= 0 (H_0 = 0), vectorised."""
    return digamma(np.asarray(k, dtype=float) + 1.0) + np.euler_gamma


def _optimal_aurc_counts(n: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Oracle AURC for n questions with e errors: (e - m (H_n - H_m)) / n, m = n - e.

    It is the mean over k = 1..n of max(0, k - m) / k, the risk when every
    correct answer outranks every error and confidences are distinct.
    """
    n = np.asarray(n, dtype=float)
    e = np.asarray(e, dtype=float)
    m = n - e
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (e - m * (_harmonic(n) - _harmonic(m))) / n
    return np.where(e <= 0, 0.0, out)


# --------------------------------------------------------------------------
# Public single-cell API
# --------------------------------------------------------------------------


def risk_coverage_curve(confidence: ArrayLike, error: ArrayLike) -> pd.DataFrame:
    """Risk-coverage curve of the gate "answer iff confidence >= threshold".

    One row per distinct confidence value ``t`` (decreasing, so coverage
    increases): ``coverage = #{conf >= t} / n``, ``risk = errors among those
    / #{conf >= t}``. Questions with equal confidence are admitted together
    (tie rule), so the curve is independent of input order. The last row is
    coverage 1 with risk = the base error rate. ``error`` must already encode
    NULL answers (see :func:`gate_errors`).
    """
    conf, err = _as_arrays(confidence, error)
    thresholds, cum_w, cum_e, total = _weighted_points(conf, err, np.ones((1, conf.size)))
    return pd.DataFrame(
        {
            "threshold": thresholds,
            "coverage": cum_w[0] / total[0],
            "risk": cum_e[0, 0] / cum_w[0],
            "n_answered": cum_w[0].astype(int),
            "n_errors": cum_e[0, 0].astype(int),
        }
    )


def aurc(confidence: ArrayLike, error: ArrayLike) -> float:
    """Area under the risk-coverage step curve, consistent with the tie rule.

    ``AURC = sum_j (c_j - c_{j-1}) * r_j`` over the curve points j (c_0 = 0):
    each tie group contributes its coverage increment times the risk after
    the whole group is admitted. Without ties this is the usual
    ``(1/n) sum_k risk@k``; with all confidences equal it is the base rate.
    """
    conf, err = _as_arrays(confidence, error)
    return float(_point_stats(conf, err)["aurc"])


def optimal_aurc(error: ArrayLike) -> float:
    """Lowest AURC any confidence can reach for these errors (oracle ranking).

    ``(e - m (H_n - H_m)) / n`` with n questions, e errors, m = n - e and H
    the harmonic numbers; reached when every correct answer has a strictly
    higher confidence than every error and errors have distinct values.
    """
    err = np.asarray(error, dtype=float)
    _as_arrays(np.zeros_like(err), err)
    return float(_optimal_aurc_counts(np.array(err.size), np.array(err.sum())))


def excess_aurc(confidence: ArrayLike, error: ArrayLike) -> float:
    """E-AURC = AURC - optimal AURC: the part of the area due to poor ranking (>= 0)."""
    return aurc(confidence, error) - optimal_aurc(error)


def coverage_at_risk(confidence: ArrayLike, error: ArrayLike, target: float) -> float:
    """Largest curve coverage whose risk is <= target, or 0 if no threshold meets it.

    This is the most a gate could answer while keeping the risk among answered
    questions at or under ``target`` (e.g. 0.01 high-risk errors). It is
    non-decreasing in ``target``. The risk curve need not be monotone, so a
    lower coverage can have a higher risk than the one reported.
    """
    conf, err = _as_arrays(confidence, error)
    return float(_point_stats(conf, err, target=target)["coverage_at_target"])


def risk_at_coverage(confidence: ArrayLike, error: ArrayLike, coverage: float) -> float:
    """Risk of the strictest threshold that answers at least ``coverage`` of the questions.

    Used to compare two conditions at matched coverage: both gates must
    answer at least the same share; ties can push the realised share above it.
    """
    if not 0.0 < coverage <= 1.0:
        raise ValueError("coverage must be in (0, 1]")
    conf, err = _as_arrays(confidence, error)
    return float(_point_stats(conf, err, coverage=coverage)["risk_at_coverage"])


def _point_stats(
    conf: np.ndarray,
    err: np.ndarray,
    target: float = DEFAULT_TARGET_RISK,
    coverage: float = DEFAULT_MATCHED_COVERAGE,
) -> dict[str, float]:
    (stats,) = curve_summaries(conf, err, None, target, coverage)
    return {k: float(v[0]) for k, v in stats.items()}


def bootstrap_gate(
    confidence: ArrayLike,
    error: ArrayLike,
    counts: np.ndarray,
    target: float = DEFAULT_TARGET_RISK,
    coverage: float = DEFAULT_MATCHED_COVERAGE,
) -> dict[str, np.ndarray]:
    """Replicate values (length B) of every gate summary under the given resampling counts.

    Pass the same ``counts`` for several signals or cells to pair them.
    Keys: aurc, optimal_aurc, e_aurc, coverage_at_target,
    threshold_at_target, risk_at_coverage, base_risk.
    """
    conf, err = _as_arrays(confidence, error)
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2 or counts.shape[1] != conf.size:
        raise ValueError("counts must be (B, n) with n = len(confidence)")
    return curve_summaries(conf, err, counts, target, coverage)[0]


def curve_summaries(
    conf: np.ndarray,
    errs: np.ndarray,
    weights: np.ndarray | None,
    target: float,
    coverage: float,
) -> list[dict[str, np.ndarray]]:
    """Summaries for each row of ``errs`` (k, n) under ``weights`` (B, n; None = ones)."""
    if weights is None:
        weights = np.ones((1, conf.size))
    thresholds, cum_w, cum_e, total = _weighted_points(conf, errs, weights)
    return [_stats(cum_w, ce, total, thresholds, target, coverage) for ce in cum_e]
