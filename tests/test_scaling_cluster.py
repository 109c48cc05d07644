"""Family-clustered inference for the scale x condition interaction (issue 16): CR2
against a textbook case, the wild cluster bootstrap, and the test's size on simulated
panels where the unclustered F test is liberal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from safescale import scaling as S
from safescale.conditions import CLEAN_EVIDENCE, CLOSED_BOOK, STANDARD_RAG
from safescale.scaling import calibration as C
from safescale.scaling.cluster import MIN_CLUSTERS, clustered_wls, cr2_contrast, wild_cluster_wald
from safescale.scaling.hypotheses import OLS_MODEL_FIXED, scale_condition_interaction

#: levels far apart, so family intercepts (scaled by each condition's spread) shift
#: differently per condition; with sizes confounded with family this makes the
#: unclustered F test reject a true null far too often.
SPREAD_LEVELS = {"accuracy": {CLOSED_BOOK: 0.5, CLEAN_EVIDENCE: 0.95, STANDARD_RAG: 0.7}}


def test_cr2_with_one_row_per_cluster_is_hc2():
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(30), rng.normal(size=30), rng.normal(size=30)])
    y = X @ [1.0, 0.5, -0.2] + rng.normal(size=30) * (1 + np.abs(X[:, 1]))
    fit = clustered_wls(y, X, np.ones(30), np.arange(30))
    est, se, df = cr2_contrast(fit, np.array([0.0, 1.0, 0.0]))
    ref = sm.OLS(y, X).fit(cov_type="HC2")
    assert est == pytest.approx(ref.params[1]) and se == pytest.approx(ref.bse[1])
    assert 3 < df < 27  # Satterthwaite df: below the residual df


def test_bell_mccaffrey_df_of_a_mean_is_n_minus_one():
    """Intercept only, one row per cluster: CR2 is the usual s^2 / n and its df n - 1."""
    y = np.random.default_rng(1).normal(size=12)
    fit = clustered_wls(y, np.ones((12, 1)), np.ones(12), np.arange(12))
    est, se, df = cr2_contrast(fit, np.array([1.0]))
    assert est == pytest.approx(y.mean())
    assert se == pytest.approx(y.std(ddof=1) / np.sqrt(12))
    assert df == pytest.approx(11)


def test_wild_bootstrap_p_is_reproducible_and_never_zero():
    rng = np.random.default_rng(2)
    cluster = np.repeat(np.arange(6), 5)
    X = np.column_stack([np.ones(30), rng.normal(size=30)])
    y = 3.0 * X[:, 1] + rng.normal(size=30)  # a strong effect: every draw is smaller
    fit = clustered_wls(y, X, np.ones(30), cluster)
    w1, p1 = wild_cluster_wald(fit, np.array([1]), B=99, seed=4)
    w2, p2 = wild_cluster_wald(fit, np.array([1]), B=99, seed=4)
    assert (w1, p1) == (w2, p2) and p1 == pytest.approx(1 / 100)


def _null_interaction(reps: int, **panel) -> pd.DataFrame:
    out = []
    for r in range(reps):
        tidy, _ = S.simulate_panel(
            seed=r,
            metrics=("accuracy",),
            slopes=C.NULL_SLOPES,
            levels=SPREAD_LEVELS,
            n_questions=40,
            **panel,
        )
        table = scale_condition_interaction(S.model_metrics(tidy), ["accuracy"], B=199, seed=r)
        out.append(table[table["term"] == "all conditions"])
    return pd.concat(out)


def test_clustered_interaction_holds_its_size_where_the_plain_f_does_not():
    """Families with typical sizes and large family effects: 30 null panels. The plain
    F test (models independent) rejected in 8 of them, the clustered test in 1."""
    joint = _null_interaction(30, n_models=20, n_families=5, sd_family=0.15, family_size_sd=0.25)
    assert (joint["method"] == OLS_MODEL_FIXED).all() and (joint["B"] == 199).all()
    assert (joint["p_unclustered"] < 0.05).mean() >= 0.15
    assert (joint["p"] < 0.05).mean() <= 0.10


def test_interaction_needs_four_families_for_the_joint_test():
    tidy, _ = S.simulate_panel(seed=3, n_models=12, n_families=3, n_questions=40)
    out = scale_condition_interaction(S.model_metrics(tidy), ["accuracy"], B=99)
    joint = out[out["term"] == "all conditions"].iloc[0]
    assert MIN_CLUSTERS == 4
    assert joint["method"] == S.NOT_ESTIMABLE and np.isnan(joint["p"])
    assert "3 families" in joint["note"] and "needs >= 4" in joint["note"]
    assert 0 <= joint["p_unclustered"] <= 1  # the labelled plain F is still shown
    assert (out["n_families"] == 3).all()


@pytest.mark.slow
def test_clustered_interaction_size_on_calibration_panels():
    """Mid (4 families) and confounded panels, 100 null panels x 2 metrics each: the
    rejection rate at 5% within [0.01, 0.10] (Monte Carlo interval of 0.05 with 200
    tests: 0.027-0.090)."""
    for name in ("mid (12 models, 4 families)", "confounded (34 models, sizes by family)"):
        checks = {
            c.path: c for c in C.null_rejections(100, 9000, C.PANELS[name], 0, claims_only=True)
        }
        check = checks["scale_condition_interaction (wild cluster bootstrap)"]
        assert check.n == 200 and 0.01 <= check.rate <= 0.10, (name, check.row())
