"""Power of the exact McNemar test, checked against direct binomial enumeration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, binomtest, multinomial

from safescale.analysis.bootstrap import mcnemar_exact, mcnemar_p
from safescale.analysis.power import (
    minimum_detectable_difference,
    paired_power,
    questions_for_power,
)

SIMS = 20_000


def exact_power(n: int, p_gain: float, p_loss: float, alpha: float = 0.05) -> float:
    """Sum of the multinomial probability of every (losses, gains, ties) table whose
    two-sided binomial p (written out, not through the module) is <= alpha."""
    total = 0.0
    for losses in range(n + 1):
        for gains in range(n + 1 - losses):
            m = losses + gains
            p = 1.0 if m == 0 else binomtest(losses, m, 0.5).pvalue
            if p <= alpha:
                probs = [p_loss, p_gain, 1 - p_gain - p_loss]
                total += multinomial.pmf([losses, gains, n - m], n, probs)
    return total


def mc_tolerance(p: float, sims: int = SIMS) -> float:
    return 4 * math.sqrt(max(p * (1 - p), 1e-4) / sims)


def test_mcnemar_p_is_the_test_of_mcnemar_exact() -> None:
    a = [1, 1, 1, 0, 0, 1, 1, 0, 1, 1]
    b = [0, 0, 1, 0, 1, 0, 0, 0, 0, 1]
    only_a, only_b, p = mcnemar_exact(a, b)
    assert p == mcnemar_p(only_a, only_b) == pytest.approx(binomtest(5, 6, 0.5).pvalue)
    assert mcnemar_p(0, 0) == 1.0


@pytest.mark.parametrize(
    ("n", "p_gain", "p_loss"), [(8, 0.4, 0.1), (12, 0.3, 0.05), (15, 0.2, 0.2)]
)
def test_small_n_power_matches_enumeration(n: int, p_gain: float, p_loss: float) -> None:
    expected = exact_power(n, p_gain, p_loss)
    got = paired_power(n, p_gain=p_gain, p_loss=p_loss, sims=SIMS, seed=1)
    assert got == pytest.approx(expected, abs=mc_tolerance(expected))


def test_one_sided_flips_give_the_binomial_tail() -> None:
    """With no losses the test rejects iff gains >= 6 (2 / 2^6 <= 0.05 < 2 / 2^5)."""
    for n in (10, 20, 30):
        expected = binom.sf(5, n, 0.25)
        got = paired_power(n, p_gain=0.25, p_loss=0.0, sims=SIMS, seed=2)
        assert got == pytest.approx(expected, abs=mc_tolerance(expected))


def test_power_rises_with_n_when_nothing_is_lost() -> None:
    powers = [paired_power(n, p_gain=0.2, p_loss=0.0, sims=4000) for n in (5, 10, 20, 40, 80)]
    assert powers == sorted(powers) and powers[0] == 0.0 and powers[-1] > 0.95


def test_power_is_deterministic_with_the_seed() -> None:
    kwargs = {"p_gain": 0.3, "p_loss": 0.1, "sims": 500}
    assert paired_power(40, **kwargs, seed=7) == paired_power(40, **kwargs, seed=7)
    assert paired_power(40, **kwargs, seed=7) != paired_power(40, **kwargs, seed=8)


def test_no_difference_rejects_at_most_alpha() -> None:
    assert paired_power(100, p_gain=0.15, p_loss=0.15, sims=SIMS) <= 0.05 + mc_tolerance(0.05)
    assert paired_power(100, p_gain=0.0, p_loss=0.0) == 0.0


def test_questions_for_power_matches_the_exact_tail() -> None:
    """No losses: the smallest n with P(gains >= 6) >= 0.8, up to simulation noise."""
    exact_n = next(n for n in range(6, 500) if binom.sf(5, n, 0.1) >= 0.8)
    n = questions_for_power(p_gain=0.1, p_loss=0.0, sims=SIMS, seed=3)
    assert abs(n - exact_n) <= 2
    again = questions_for_power(p_gain=0.1, p_loss=0.0, sims=SIMS, seed=3)
    assert n == again


def test_questions_for_power_reaches_target_and_needs_a_difference() -> None:
    n = questions_for_power(p_gain=0.2, p_loss=0.05)
    assert paired_power(n, p_gain=0.2, p_loss=0.05) >= 0.8
    assert paired_power(n // 2, p_gain=0.2, p_loss=0.05) < 0.8
    with pytest.raises(ValueError, match="no difference"):
        questions_for_power(p_gain=0.1, p_loss=0.1)


def test_minimum_detectable_difference() -> None:
    mdd = minimum_detectable_difference(200, discordance=0.2)
    share = (0.2 + mdd) / 2
    assert paired_power(200, p_gain=share, p_loss=0.2 - share) >= 0.8
    assert 0 < mdd < 0.2
    assert minimum_detectable_difference(400, discordance=0.2) < mdd
    # 16 questions with 1 in 8 discordant: fewer than 6 flips are expected, nothing detectable.
    assert math.isnan(minimum_detectable_difference(16, discordance=0.125))


@pytest.mark.parametrize(
    "call",
    [
        lambda: paired_power(0, p_gain=0.1, p_loss=0.0),
        lambda: paired_power(10, p_gain=0.7, p_loss=0.5),
        lambda: paired_power(10, p_gain=-0.1, p_loss=0.0),
        lambda: paired_power(10, p_gain=0.1, p_loss=0.0, alpha=1.5),
        lambda: minimum_detectable_difference(10, discordance=0.0),
        lambda: questions_for_power(p_gain=0.2, p_loss=0.0, target=1.0),
    ],
)
def test_bad_input_is_refused(call) -> None:
    with pytest.raises(ValueError):
        call()


def test_mcnemar_counts_are_losses_then_gains() -> None:
    """The simulation's (losses, gains) order matches mcnemar_exact's (b, c)."""
    reference = np.array([1, 1, 0, 0])
    condition = np.array([0, 1, 1, 1])
    assert mcnemar_exact(reference, condition)[:2] == (1, 2)
