"""Power of the paired closed-book -> clean-evidence test: what N questions can show.

Between two conditions each question's greedy correctness either flips wrong -> right
(a gain, probability `p_gain`), right -> wrong (a loss, `p_loss`), or stays; the
accuracy difference is p_gain - p_loss and the discordance p_gain + p_loss. The power
simulated here is that of the exact McNemar test (`bootstrap.mcnemar_p`, the test of
`mcnemar.csv`). Its discrete binomial tails keep its size at or below alpha, so it is
conservative relative to the paired-bootstrap p of `paired_comparisons.csv`: read the
power here as a floor for the bootstrap's, and a minimum detectable difference as a
ceiling.

Simulation uses common random numbers: for one (n, seed) the number of discordant
questions and the uniform draw that splits them are the same whatever the difference,
so power moves smoothly with the difference and every answer is deterministic.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.stats import binom

from safescale.analysis.bootstrap import mcnemar_p

DEFAULT_SIMS = 2000
DEFAULT_TARGET = 0.8
DEFAULT_ALPHA = 0.05

# The p of each (losses, gains) pair is computed once per process: a search for N or for
# a difference meets the same pairs again and again.
_cached_p = lru_cache(maxsize=None)(mcnemar_p)


def _check_probability(name: str, value: float, *, open_low: bool = False) -> None:
    low_ok = value > 0 if open_low else value >= 0
    if not (low_ok and value <= 1):
        bound = "(0, 1]" if open_low else "[0, 1]"
        raise ValueError(f"{name} must lie in {bound}, got {value!r}")


def _check_common(alpha: float, sims: int, target: float | None = None) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    if target is not None and not 0 < target < 1:
        raise ValueError(f"target power must lie in (0, 1), got {target!r}")
    if sims < 1:
        raise ValueError(f"sims must be at least 1, got {sims!r}")


def _rejection_rate(
    n: int, discordance: float, gain_share: float, alpha: float, sims: int, seed: int
) -> float:
    """Share of `sims` simulated runs of `n` questions whose exact McNemar p <= alpha."""
    rng = np.random.default_rng(seed)
    discordant = rng.binomial(n, discordance, size=sims)
    uniform = rng.random(sims)
    gains = np.clip(binom.ppf(uniform, discordant, gain_share), 0, discordant).astype(int)
    losses = discordant - gains
    pairs, inverse = np.unique(np.stack([losses, gains], axis=1), axis=0, return_inverse=True)
    p = np.array([_cached_p(int(b), int(c)) for b, c in pairs])
    return float(np.mean(p[np.ravel(inverse)] <= alpha))


def paired_power(
    n: int,
    *,
    p_gain: float,
    p_loss: float,
    alpha: float = DEFAULT_ALPHA,
    sims: int = DEFAULT_SIMS,
    seed: int = 0,
) -> float:
    """Probability that the two-sided exact McNemar test at `alpha` rejects "no
    difference" on `n` paired questions that gain with `p_gain` and lose with `p_loss`."""
    if n < 1:
        raise ValueError(f"n must be at least 1 question, got {n!r}")
    _check_probability("p_gain", p_gain)
    _check_probability("p_loss", p_loss)
    discordance = p_gain + p_loss
    if discordance > 1 + 1e-12:
        raise ValueError(f"p_gain + p_loss must be at most 1, got {discordance!r}")
    _check_common(alpha, sims)
    if discordance == 0:
        return 0.0  # no question ever changes: the test never rejects
    return _rejection_rate(n, min(discordance, 1.0), p_gain / discordance, alpha, sims, seed)


def questions_for_power(
    *,
    p_gain: float,
    p_loss: float,
    target: float = DEFAULT_TARGET,
    alpha: float = DEFAULT_ALPHA,
    sims: int = DEFAULT_SIMS,
    seed: int = 0,
    n_max: int = 100_000,
) -> int:
    """The smallest N (found by doubling, then bisection) whose power reaches `target`.

    Exact tests have a saw-toothed power curve (the reachable p-values jump with N), so
    a few N just above the answer may fall slightly short; the answer is the bisection's
    first N at or above target."""
    _check_common(alpha, sims, target)
    if p_gain == p_loss:
        raise ValueError("p_gain equals p_loss: there is no difference to detect")

    def power(n: int) -> float:
        return paired_power(n, p_gain=p_gain, p_loss=p_loss, alpha=alpha, sims=sims, seed=seed)

    low, high = 0, 8
    while power(high) < target:
        low, high = high, high * 2
        if high > n_max:
            raise ValueError(
                f"power {target} not reached with up to {n_max} questions "
                f"(p_gain={p_gain}, p_loss={p_loss})"
            )
    while high - low > 1:  # power(low) < target <= power(high); low = 0 means untested
        mid = (low + high) // 2
        if power(mid) >= target:
            high = mid
        else:
            low = mid
    return high


def minimum_detectable_difference(
    n: int,
    *,
    discordance: float,
    target: float = DEFAULT_TARGET,
    alpha: float = DEFAULT_ALPHA,
    sims: int = DEFAULT_SIMS,
    seed: int = 0,
    tol: float = 1e-3,
) -> float:
    """The smallest accuracy difference p_gain - p_loss that `n` questions detect with
    power `target`, at a fixed discordance p_gain + p_loss (the share of questions whose
    correctness differs between the conditions). NaN when even the largest difference
    the discordance allows (every discordant question moving one way) falls short."""
    if n < 1:
        raise ValueError(f"n must be at least 1 question, got {n!r}")
    _check_probability("discordance", discordance, open_low=True)
    _check_common(alpha, sims, target)

    def power(diff: float) -> float:
        share = min(1.0, (discordance + diff) / (2 * discordance))
        return _rejection_rate(n, discordance, share, alpha, sims, seed)

    if power(discordance) < target:
        return math.nan
    low, high = 0.0, discordance
    while high - low > tol:
        mid = (low + high) / 2
        if power(mid) >= target:
            high = mid
        else:
            low = mid
    return high
