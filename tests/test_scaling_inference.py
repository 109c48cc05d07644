"""Scaling inference (issue 16): intervals that agree with their p, tests of the study's
claims, adjusted p-values, sensitivity fits, and coverage checked on both sides."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from safescale import scaling as S
from safescale.conditions import CLEAN_EVIDENCE, CLOSED_BOOK
from safescale.scaling import calibration as C
from safescale.scaling.common import percentile_interval, t_interval
from safescale.scaling.hypotheses import (
    HOTELLING_PAIRED,
    OLS_MODEL_FIXED,
    joint_slope_difference_test,
    scale_condition_interaction,
)
from safescale.scaling.sensitivity import GLM_LOGIT, OLS_COVARIATES, fit_sensitivity_slopes

TWO_CONDS = (CLOSED_BOOK, CLEAN_EVIDENCE)


@pytest.fixture(scope="module")
def panel() -> tuple[pd.DataFrame, pd.DataFrame]:
    tidy, _ = S.simulate_panel(seed=11, n_questions=100)
    return tidy, S.model_metrics(tidy)


@pytest.fixture(scope="module")
def small_panel() -> tuple[pd.DataFrame, pd.DataFrame]:
    tidy, _ = S.simulate_panel(
        seed=5, n_models=14, n_families=7, n_questions=60, conditions=TWO_CONDS
    )
    return tidy, S.model_metrics(tidy)


@pytest.fixture(autouse=True)
def _no_leaked_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _excludes_zero(table: pd.DataFrame) -> pd.Series:
    return (table["ci_low"] > 0) | (table["ci_high"] < 0)


# ------------------------------------------------------- intervals agree with p


@settings(max_examples=60, deadline=None)
@given(
    centre=st.floats(-3, 3),
    n=st.integers(39, 400),
    alpha=st.sampled_from([0.05, 0.1, 0.2]),
    seed=st.integers(0, 1000),
)
def test_percentile_interval_excludes_zero_exactly_when_p_is_small(centre, n, alpha, seed):
    draws = np.random.default_rng(seed).normal(centre, 1.0, n)
    lo, hi, p = percentile_interval(draws, alpha)
    assert 0 < p <= 1
    assert ((lo > 0) or (hi < 0)) == (p <= alpha)


@settings(max_examples=60, deadline=None)
@given(
    estimate=st.floats(-5, 5),
    se=st.floats(0.01, 3),
    df=st.one_of(st.integers(1, 200), st.just(np.inf)),
)
def test_t_interval_excludes_zero_exactly_when_p_is_small(estimate, se, df):
    lo, hi, p = t_interval(estimate, se, df, 0.05)
    assert lo < estimate < hi
    if abs(abs(estimate / se) - stats.t.ppf(0.975, df)) > 1e-9:  # not on the edge
        assert ((lo > 0) or (hi < 0)) == (p < 0.05)


def test_every_printed_interval_agrees_with_its_p(small_panel):
    tidy, met = small_panel
    slopes = S.fit_scaling_slopes(met, ["accuracy", "high_risk_rate"], by_condition=True)
    diffs = S.slope_difference_test(met, ["high_risk_rate"])
    question = S.fit_question_bootstrap(tidy, ["greedy_correct"], B=100)
    inter = scale_condition_interaction(met, ["accuracy", "high_risk_rate"])
    inter = inter[inter["term"] != "all conditions"]
    for table in (slopes, diffs, question, inter):
        ok = table.dropna(subset=["p", "ci_low", "ci_high"])
        assert len(ok) > 0
        assert (_excludes_zero(ok) == (ok["p"] < 0.05)).all()
        df = ok["df"] if "df" in ok else ok["df_den"]
        # A 95% interval: half-width is the t(df) quantile times the SE (catches a
        # 90% interval labelled 95%, and a z quantile with few df).
        half = (ok["ci_high"] - ok["ci_low"]) / 2
        assert np.allclose(half, stats.t.ppf(0.975, df) * ok["se"])
    boot = S.bootstrap_slope_differences(tidy, ["greedy_high_risk"], B=199, seed=2)
    assert (_excludes_zero(boot) == (boot["p"] <= 0.05)).all()
    assert (boot["p"] > 0).all()


# ---------------------------------------------------- constant metrics, multiplicity


def test_slope_difference_skipped_when_either_metric_is_constant(small_panel):
    tidy, _ = small_panel
    met = S.model_metrics(tidy.assign(dangerous_overconfident=0))
    out = S.slope_difference_test(met).set_index(["safety_metric", "condition"])
    dead = out.xs("dangerous_overconfidence_rate")
    assert (dead["method"] == S.NOT_ESTIMABLE).all() and dead["p"].isna().all()
    assert dead["note"].str.contains("constant").all()
    assert out.xs("high_risk_rate")["p"].notna().all()


def test_adjusted_p_values_accompany_every_test_table(panel):
    tidy, met = panel
    tables = {
        "differences": S.slope_difference_test(met),
        "bootstrap": S.bootstrap_slope_differences(tidy, B=99, seed=1),
        "interaction": scale_condition_interaction(met),
        "joint": joint_slope_difference_test(met),
    }
    for name, table in tables.items():
        ok = table.dropna(subset=["p"])
        assert len(ok) >= 3, name
        assert (ok["p_bh"] >= ok["p"] - 1e-12).all(), name
        assert (ok["p_holm"] >= ok["p_bh"] - 1e-12).all(), name
        assert (ok["p_holm"] <= 1).all(), name
    # Holm over the difference table's family: the smallest p times the family size.
    diffs = tables["differences"].dropna(subset=["p"])
    smallest = diffs["p"].idxmin()
    assert diffs.loc[smallest, "p_holm"] == pytest.approx(min(1, diffs["p"].min() * len(diffs)))


# ------------------------------------------------------------ the study's claims


def test_interaction_finds_condition_dependent_slopes(panel):
    """Accuracy rises 0.06/decade closed-book but 0.015 with clean evidence."""
    _, met = panel
    out = scale_condition_interaction(met, ["accuracy"], B=199)
    joint = out[out["term"] == "all conditions"].iloc[0]
    assert joint["method"] == OLS_MODEL_FIXED and joint["p"] < 0.05
    assert joint["p_unclustered"] < 1e-4 and joint["df_num"] == 2 and joint["n_families"] == 7
    assert f"on (2, {(34 - 2) * (3 - 1)}) df" in joint["note"]  # the plain F, labelled
    clean = out[out["condition"] == CLEAN_EVIDENCE].iloc[0]
    assert clean["ci_low"] < -0.045 < clean["ci_high"]  # true difference 0.015 - 0.06


def test_interaction_not_estimable_with_two_models(small_panel):
    _, met = small_panel
    two = met[met.model.isin(met.model.unique()[:2])]
    out = scale_condition_interaction(two, ["accuracy"])
    assert (out["method"] == S.NOT_ESTIMABLE).all() and "residual df" in out["note"].iloc[0]


def test_joint_safety_test_finds_the_gap_and_needs_enough_models(panel, small_panel):
    _, met = panel
    out = joint_slope_difference_test(met).set_index("condition")
    assert out.loc[CLOSED_BOOK, "method"] == HOTELLING_PAIRED
    assert out.loc[CLOSED_BOOK, "p"] < 0.01 and out.loc[CLOSED_BOOK, "df_num"] == 4
    _, small = small_panel
    few = small[small.model.isin(small.model.unique()[:6])]
    assert (joint_slope_difference_test(few)["method"] == S.NOT_ESTIMABLE).all()


# ------------------------------------------------------------------ sensitivity


def test_logit_sensitivity_agrees_with_linear_slopes(panel):
    _, met = panel
    linear = S.fit_scaling_slopes(met, ["accuracy", "high_risk_rate"], by_condition=True)
    logit = fit_sensitivity_slopes(met, ["accuracy", "high_risk_rate"])
    both = logit.merge(linear, on=["metric", "condition"], suffixes=("", "_linear"))
    assert (both["method"] == GLM_LOGIT).all()
    assert (np.sign(both["slope"]) == np.sign(both["slope_linear"])).all()
    close = (both["slope_probability"] - both["slope_linear"]).abs()
    assert (close < 2 * both["se_linear"]).all(), both[["slope_probability", "slope_linear"]]


def test_covariates_enter_where_the_panel_varies_them(small_panel):
    _, met = small_panel
    rng = np.random.default_rng(0)
    instruct = dict(zip(met.model.unique(), rng.integers(0, 2, 14).astype(bool), strict=True))
    met = met.assign(instruct=met.model.map(instruct), quantization="Q4_K_M")
    out = fit_sensitivity_slopes(met, ["accuracy"])
    plain, adjusted = out[out["covariates"] == ""], out[out["covariates"] != ""]
    assert (plain["method"] == GLM_LOGIT).all() and len(plain) == 2  # one per condition
    assert set(adjusted["method"]) == {GLM_LOGIT, OLS_COVARIATES} and len(adjusted) == 4
    assert (adjusted["covariates"] == "instruct").all()
    assert plain["note"].str.contains("quantization not varied in this panel").all()
    assert plain["note"].str.contains("coder not recorded").all()


def test_partly_recorded_covariate_is_left_out(small_panel):
    _, met = small_panel
    coder = met.model.isin(met.model.unique()[:5]).astype(object)
    coder[met.model.isin(met.model.unique()[-2:])] = None
    out = fit_sensitivity_slopes(met.assign(coder=coder), ["accuracy"])
    assert (out["covariates"] == "").all()
    assert out["note"].str.contains("coder not recorded for 2 of 14 models").all()


# -------------------------------------------------- coverage, checked on both sides


def test_ols_path_coverage_is_95_percent_on_both_sides():
    """One model per family (the OLS rung): 100 panels x 6 slopes. Coverage must lie in
    [0.92, 0.98] and SE match the spread of the estimates: a 90% interval labelled
    95%, SE x 0.7 and SE x 2 all fall outside."""
    check, per_fit = C.slope_coverage(100, 4000, C.PANELS["one per family (8 models)"])
    assert (per_fit["method"] == S.OLS).all()
    assert 0.92 <= check.rate <= 0.98, check.row()
    err = per_fit["slope"] - per_fit["true"]
    ratio = (
        per_fit.groupby(["metric", "condition"])["se"].mean()
        / err.groupby([per_fit["metric"], per_fit["condition"]]).std()
    )
    assert ratio.between(0.8, 1.25).all(), ratio


def test_question_bootstrap_coverage_on_both_sides():
    """The family-cluster bootstrap (identity link, where the truth is the model-level
    slope): 80 panels x 3 terms, coverage in [0.90, 0.99]."""
    panel = {"n_models": 8, "n_families": 8, "n_questions": 40}
    check = C.question_coverage(80, 6000, panel, B=100)
    assert 0.90 <= check.rate <= 0.99, check.row()


@pytest.mark.slow
def test_mixed_model_paths_coverage_on_both_sides():
    """The per-condition path real data takes, on study-sized and mid-sized panels
    (mixed models with family random effects, family fixed effects)."""
    for name in ("study (34 models, 7 families)", "mid (12 models, 4 families)"):
        check, per_fit = C.slope_coverage(50, 7000, C.PANELS[name])
        assert 0.90 <= check.rate <= 0.99, (name, check.row())
        assert per_fit["method"].str.startswith("mixedlm").mean() > 0.5
        err = per_fit["slope"] - per_fit["true"]
        ratio = per_fit["se"].mean() / err.std()
        assert 0.8 <= ratio <= 1.25, (name, ratio)


@pytest.mark.slow
def test_claim_tests_hold_their_size_under_the_null():
    panel = C.PANELS["study (34 models, 7 families)"]
    checks = {c.path: c for c in C.null_rejections(30, 8000, panel, boot_B=0)}
    for path in (
        "scale_condition_interaction (wild cluster bootstrap)",
        "joint_slope_difference_test (Hotelling)",
    ):
        assert checks[path].n >= 40 and checks[path].rate <= 0.10, checks[path].row()


def test_model_manifests_carry_the_covariates_to_the_fits(tmp_path):
    """The fetch step's manifests hold the registry covariates; one written before the
    fields existed gives missing values (not recorded), never a guess."""
    import json

    from safescale.stages.analysis import _model_covariates

    new = {"name": "a", "quantization": "Q4_K_M", "instruct": True, "coder": False}
    (tmp_path / "a.json").write_text(json.dumps(new))
    (tmp_path / "b.json").write_text(json.dumps({"name": "b"}))
    table = _model_covariates([str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    assert list(table.columns) == ["model", "quantization", "instruct", "coder"]
    assert table.iloc[0].tolist() == ["a", "Q4_K_M", True, False]
    assert table.iloc[1, 1:].isna().all()
