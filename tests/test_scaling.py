"""Scaling statistics: slope recovery, safety-vs-accuracy tests, small panels, question-level
models, variance decomposition."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_definitions import synthetic_panel
from scipy import stats
from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM
from statsmodels.regression.mixed_linear_model import MixedLM

from safescale import scaling as S
from safescale.analysis.labeling import label_predictions
from safescale.analysis.metrics import HEADLINE_METRICS, compute_metrics
from safescale.conditions import CLEAN_EVIDENCE, CLOSED_BOOK

TWO_CONDS = (CLOSED_BOOK, CLEAN_EVIDENCE)


@pytest.fixture(scope="module")
def panel() -> tuple[pd.DataFrame, pd.DataFrame, S.SimTruth]:
    """One study-sized simulated panel (34 models, 7 families, 200 questions)."""
    tidy, truth = S.simulate_panel(seed=11)
    return tidy, S.model_metrics(tidy), truth


@pytest.fixture(scope="module")
def small_panel() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A small panel for the degenerate cases and the question-level fits."""
    tidy, _ = S.simulate_panel(
        seed=5, n_models=14, n_families=7, n_questions=60, conditions=TWO_CONDS
    )
    return tidy, S.model_metrics(tidy)


@pytest.fixture(autouse=True)
def _no_leaked_warnings():
    """Fits must capture their warnings, not print them."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ----------------------------------------------------------------- basics


def test_model_metrics_are_question_means(small_panel):
    tidy, met = small_panel
    row = met.iloc[0]
    sub = tidy[(tidy.model == row.model) & (tidy.condition == row.condition)]
    assert row.accuracy == pytest.approx(sub.greedy_correct.mean())
    assert row.high_risk_rate == pytest.approx(sub.greedy_high_risk.mean())
    assert row.n_questions == 60
    assert len(met) == 14 * 2


def test_model_metrics_agree_with_the_metrics_table():
    """The simulated path and the pipeline's metrics table use one definition per rate:
    on a labelled panel with error records (counted as wrong) and skipped records
    (left out of every denominator) they agree exactly."""
    questions, records, meta = synthetic_panel(seed=3, n_models=3, n_questions=25)
    tidy = label_predictions(questions, records, meta)
    keys = ["model", "condition"]
    ours = S.model_metrics(tidy).set_index(keys).sort_index()
    table = compute_metrics(tidy).set_index(keys).sort_index()
    assert set(ours.columns) >= set(HEADLINE_METRICS)
    assert (tidy["status"] == "error").any() and (tidy["status"] == "skipped").any()
    pd.testing.assert_frame_equal(ours[list(HEADLINE_METRICS)], table[list(HEADLINE_METRICS)])
    assert (ours["n_questions"] == table["n_questions"]).all()


def test_model_metrics_refuses_duplicate_rows(small_panel):
    tidy, _ = small_panel
    with pytest.raises(ValueError, match="duplicate"):
        S.model_metrics(pd.concat([tidy, tidy.iloc[:1]]))


def test_simulation_is_linear_in_log_params(panel):
    """Expected model-level metric = level + slope * x + random effects (by design)."""
    _, _, truth = panel
    assert truth.n_clipped < 10
    assert set(truth.slopes.columns) >= {"metric", "condition", "slope"}
    exp = truth.expected
    assert len(exp) == 34 * 3
    assert exp["family"].nunique() == 7
    assert exp["params_b"].between(0.5, 675).all()


# --------------------------------------------------------- model-level slopes


def test_recovers_known_slopes(panel):
    _, met, truth = panel
    out = S.fit_scaling_slopes(met, ["accuracy", "high_risk_rate"])
    assert list(out.columns) == S.SLOPE_COLUMNS
    out = out.merge(truth.slopes, on=["metric", "condition"], suffixes=("", "_true"))
    assert len(out) == 6
    assert out["method"].isin([S.RANDOM_SLOPE, S.RANDOM_INTERCEPT, S.OLS_FAMILY_FIXED]).all()
    assert out["converged"].all()
    assert (out["n_models"] == 34).all() and (out["n_families"] == 7).all()
    err = (out["slope"] - out["slope_true"]).abs()
    assert (err < np.maximum(3 * out["se"], 0.01)).all(), out[["slope", "slope_true", "se"]]
    assert (out["ci_low"] < out["slope"]).all() and (out["slope"] < out["ci_high"]).all()


def test_by_condition_matches_pooled_roughly(panel):
    _, met, _ = panel
    pooled = S.fit_scaling_slopes(met, ["accuracy"])
    sep = S.fit_scaling_slopes(met, ["accuracy"], by_condition=True)
    assert np.allclose(pooled["slope"], sep["slope"], atol=0.01)
    assert sep["converged"].all()


@pytest.mark.parametrize("fit", [S.fit_scaling_slopes, S.slope_difference_test])
def test_model_level_fits_take_no_tidy_argument(panel, fit):
    """The question table was once accepted and silently ignored; now it is refused."""
    tidy, met, _ = panel
    with pytest.raises(TypeError, match="tidy"):
        fit(met, tidy=tidy)


def test_noise_free_line_recovered_exactly():
    """Metric = 0.5 + 0.04 * log10(p) + family shift + tiny noise."""
    rng = np.random.default_rng(0)
    rows = []
    for f in range(5):
        for k in range(5):
            p = 10 ** rng.uniform(-0.3, 2.8)
            y = 0.5 + 0.04 * np.log10(p) + 0.02 * (f - 2) + rng.normal(0, 1e-3)
            rows.append({"model": f"f{f}m{k}", "family": f"f{f}", "params_b": p, "accuracy": y})
    met = pd.DataFrame(rows).assign(condition=CLOSED_BOOK)
    out = S.fit_scaling_slopes(met, ["accuracy"])
    assert out.loc[0, "slope"] == pytest.approx(0.04, abs=2e-3)
    assert out.loc[0, "method"] != S.NOT_ESTIMABLE


# ------------------------------------------------- safety slope vs accuracy slope


def test_difference_detects_real_gap(panel):
    """Error rate falls 0.06/decade closed-book, high-risk only 0.02: a real gap."""
    tidy, met, truth = panel
    out = S.slope_difference_test(met, ["high_risk_rate"])
    assert list(out.columns) == S.DIFF_COLUMNS
    row = out.set_index("condition").loc[CLOSED_BOOK]
    true_gap = truth.slopes.set_index(["metric", "condition"])
    gap = (
        true_gap.loc[("high_risk_rate", CLOSED_BOOK), "slope"]
        + true_gap.loc[("accuracy", CLOSED_BOOK), "slope"]
    )
    assert gap == pytest.approx(0.04)
    assert row["method"] in (S.RANDOM_SLOPE, S.RANDOM_INTERCEPT, S.OLS_FAMILY_FIXED)
    assert row["p"] < 0.01 and row["ci_low"] > 0
    assert row["diff"] == pytest.approx(gap, abs=3 * row["se"])
    assert row["diff"] == pytest.approx(row["slope_safety"] - row["slope_reference"])
    boot = S.bootstrap_slope_differences(tidy, ["greedy_high_risk"], B=300, seed=1)
    brow = boot.set_index("condition").loc[CLOSED_BOOK]
    assert list(boot.columns) == S.BOOT_COLUMNS
    assert brow["ci_low"] > 0 and brow["p"] < 0.05
    assert brow["method"] == S.PAIRED_BOOTSTRAP


NULL_SLOPES = {
    "accuracy": {CLOSED_BOOK: 0.05, CLEAN_EVIDENCE: 0.02},
    "high_risk_rate": {CLOSED_BOOK: -0.05, CLEAN_EVIDENCE: -0.02},
}
NULL_LEVELS = {
    "accuracy": {CLOSED_BOOK: 0.70, CLEAN_EVIDENCE: 0.90},
    "high_risk_rate": {CLOSED_BOOK: 0.25, CLEAN_EVIDENCE: 0.08},
}


def test_difference_not_flagged_when_absent():
    """High-risk rate falls exactly as fast as the error rate: no difference."""
    tidy, _ = S.simulate_panel(
        seed=1003,
        conditions=TWO_CONDS,
        slopes=NULL_SLOPES,
        levels=NULL_LEVELS,
        metrics=("accuracy", "high_risk_rate"),
    )
    met = S.model_metrics(tidy)
    out = S.slope_difference_test(met, ["high_risk_rate"])
    assert (out["p"] > 0.05).all(), out[["condition", "diff", "se", "p", "method"]]
    assert ((out["ci_low"] < 0) & (out["ci_high"] > 0)).all()
    # Raw accuracy slope vs safety slope: opposite signs, trivially "different".
    raw = S.slope_difference_test(met, ["high_risk_rate"], accuracy_as="accuracy")
    assert (raw["p"] < 0.01).all()
    assert (raw["reference"] == "accuracy").all()


def test_bootstrap_null_without_model_noise():
    """With only question noise the question bootstrap is the right yardstick."""
    tidy, _ = S.simulate_panel(
        seed=7,
        conditions=(CLOSED_BOOK,),
        slopes=NULL_SLOPES,
        levels=NULL_LEVELS,
        metrics=("accuracy", "high_risk_rate"),
        sd_family=0,
        sd_family_slope=0,
        sd_model=0,
        sd_cell=0,
    )
    boot = S.bootstrap_slope_differences(tidy, ["greedy_high_risk"], B=400, seed=3)
    assert boot.loc[0, "p"] > 0.05
    assert boot.loc[0, "ci_low"] < 0 < boot.loc[0, "ci_high"]
    again = S.bootstrap_slope_differences(tidy, ["greedy_high_risk"], B=400, seed=3)
    pd.testing.assert_frame_equal(boot, again)


# ------------------------------------------------------------- degenerate panels


def _subset(small_panel, models):
    tidy, met = small_panel
    return tidy[tidy.model.isin(models)], met[met.model.isin(models)]


def test_one_model_is_not_estimable(small_panel):
    models = small_panel[1].model.unique()[:1]
    tidy, met = _subset(small_panel, models)
    out = S.fit_scaling_slopes(met, ["accuracy"])
    assert (out["method"] == S.NOT_ESTIMABLE).all()
    assert out["slope"].isna().all() and not out["converged"].any()
    assert out["note"].str.contains("single model size").all()
    diff = S.slope_difference_test(met, ["high_risk_rate"])
    assert (diff["method"] == S.NOT_ESTIMABLE).all() and diff["note"].str.len().gt(0).all()
    boot = S.bootstrap_slope_differences(tidy, ["greedy_high_risk"], B=50)
    assert (boot["method"] == S.NOT_ESTIMABLE).all()
    q = S.fit_question_models(tidy, ["greedy_correct"])
    assert (q["method"] == S.NOT_ESTIMABLE).all() and q["note"].str.contains("size").all()


@pytest.mark.parametrize("n_models", [2, 3, 4])
def test_fewer_than_three_residual_df_print_nothing(small_panel, n_models):
    """2-4 models leave 0-2 residual df: no slope, CI or p, and the note says why
    (with the descriptive line through the models); no question-level stand-in."""
    models = small_panel[1].drop_duplicates("family").model.iloc[:n_models]
    _, met = _subset(small_panel, models)
    out = S.fit_scaling_slopes(met, ["accuracy"])
    assert (out["method"] == S.NOT_ESTIMABLE).all()
    assert out[["slope", "se", "ci_low", "ci_high", "p", "df"]].isna().all().all()
    assert out["note"].str.contains(f"{n_models - 2} residual df \\(< 3\\)").all()
    assert out["note"].str.contains("per decade").all()
    diff = S.slope_difference_test(met, ["high_risk_rate"])
    assert (diff["method"] == S.NOT_ESTIMABLE).all() and diff["p"].isna().all()
    assert diff["note"].str.contains("residual df").all()


def test_five_models_give_a_t_interval_with_three_df(small_panel):
    models = small_panel[1].drop_duplicates("family").model.iloc[:5]
    _, met = _subset(small_panel, models)
    out = S.fit_scaling_slopes(met, ["accuracy"])
    assert (out["method"] == S.OLS).all() and (out["df"] == 3).all()
    half = stats.t.ppf(0.975, 3) * out["se"]
    assert np.allclose(out["ci_high"] - out["slope"], half)
    assert np.allclose(out["p"], 2 * stats.t.sf(np.abs(out["slope"] / out["se"]), 3))


def test_one_model_per_family_falls_back_to_ols(small_panel):
    models = small_panel[1].drop_duplicates("family").model
    _, met = _subset(small_panel, models)
    out = S.fit_scaling_slopes(met, ["accuracy"])
    assert (out["method"] == S.OLS).all() and out["converged"].all()
    assert out["note"].str.contains("one model per family").all()
    assert (out["df"] == 7 - 2).all()
    diff = S.slope_difference_test(met, ["high_risk_rate"])
    assert (diff["method"] == S.OLS).all() and (diff["df"] == 5).all()


def test_all_zero_outcome(small_panel):
    tidy, _ = small_panel
    tidy = tidy.assign(greedy_high_risk=0)
    met = S.model_metrics(tidy)
    out = S.fit_scaling_slopes(met, ["high_risk_rate"])
    assert (out["method"] == S.NOT_ESTIMABLE).all()
    assert out["note"].str.contains("constant").all()
    q = S.fit_question_models(tidy, ["greedy_high_risk"])
    assert (q["method"] == S.NOT_ESTIMABLE).all() and q["note"].str.contains("constant").all()
    vd = S.variance_decomposition(met, ["high_risk_rate"])
    assert np.isnan(vd.loc[0, "share_condition"]) and "zero total variance" in vd.loc[0, "note"]


def test_constant_condition_is_dropped_not_fitted(small_panel):
    tidy, _ = small_panel
    tidy = tidy.copy()
    tidy.loc[tidy.condition == CLEAN_EVIDENCE, "greedy_high_risk"] = 0
    met = S.model_metrics(tidy)
    out = S.fit_scaling_slopes(met, ["high_risk_rate"]).set_index("condition")
    assert out.loc[CLEAN_EVIDENCE, "method"] == S.NOT_ESTIMABLE
    assert out.loc[CLOSED_BOOK, "method"] != S.NOT_ESTIMABLE
    boot = S.fit_question_bootstrap(tidy, ["greedy_high_risk"], B=50)
    assert boot["note"].str.contains("dropped conditions").all()
    assert not boot["term"].str.contains(CLEAN_EVIDENCE).any()


def test_non_converged_mixedlm_is_never_reported(monkeypatch, panel):
    """A fit whose optimiser reports failure must be replaced, with the reason."""
    _, met, _ = panel
    real_fit = MixedLM.fit

    def failing_fit(self, *args, **kwargs):
        res = real_fit(self, *args, **kwargs)
        res.converged = False
        return res

    monkeypatch.setattr(MixedLM, "fit", failing_fit)
    out = S.fit_scaling_slopes(met, ["accuracy"])
    assert not out["method"].str.startswith("mixedlm").any()
    assert (out["method"] == S.OLS_FAMILY_FIXED).all()
    assert out["note"].str.contains("did not converge").all()


def test_non_converged_glmm_is_not_estimable(monkeypatch, small_panel):
    tidy, _ = small_panel

    def failing_vb(self, *args, **kwargs):
        return SimpleNamespace(
            fe_mean=np.zeros(3),
            fe_sd=np.ones(3),
            optim_retvals=SimpleNamespace(success=False, message="ABNORMAL", jac=np.ones(3)),
        )

    monkeypatch.setattr(BinomialBayesMixedGLM, "fit_vb", failing_vb)
    out = S.fit_question_glmm(tidy, ["greedy_correct"])
    assert (out["method"] == S.NOT_ESTIMABLE).all() and not out["converged"].any()
    assert out["note"].str.contains("did not converge").all()


# --------------------------------------------------------- question-level models


def test_question_models_signs_and_what_they_print(small_panel):
    tidy, _ = small_panel
    out = S.fit_question_models(tidy, ["greedy_correct", "greedy_high_risk"], seed=0, B=100)
    assert list(out.columns) == S.QUESTION_COLUMNS
    slope = out[out.term == "log10_params"].set_index(["outcome", "method"])
    for method in (S.GLMM_VB, S.GLM_CLUSTER_BOOTSTRAP):
        acc = slope.loc[("greedy_correct", method)]
        hr = slope.loc[("greedy_high_risk", method)]
        assert acc["estimate"] > 0 and hr["estimate"] < 0, method
        assert acc["converged"] and hr["converged"]
    cond = out[out.term == f"condition[T.{CLEAN_EVIDENCE}]"].set_index(["outcome", "method"])
    assert (cond.xs("greedy_correct")["estimate"] > 0).all()
    assert (cond.xs("greedy_high_risk")["estimate"] < 0).all()
    # The log10 x condition interaction is a term of both models.
    inter = f"log10_params:condition[T.{CLEAN_EVIDENCE}]"
    assert set(out.loc[out.term == inter, "method"]) == {S.GLMM_VB, S.GLM_CLUSTER_BOOTSTRAP}
    sds = out[out.term.str.startswith("sd(")]
    assert set(sds.term) == {"sd(question)", "sd(model)", "sd(family)"}
    assert (sds.estimate > 0).all()
    # Only the calibrated bootstrap prints intervals and p; the VB posterior does not.
    glmm = out[out.method == S.GLMM_VB]
    assert glmm[["ci_low", "ci_high", "p"]].isna().all().all()
    assert glmm["interval"].str.startswith("none").all()
    boot = out[out.method == S.GLM_CLUSTER_BOOTSTRAP]
    assert boot[["ci_low", "ci_high", "p"]].notna().all().all()
    assert boot["interval"].str.contains("cluster-bootstrap SE (families", regex=False).all()
    # 14 models in 7 families of 2 sizes: family effects are in, 14 - 7 - 1 model df.
    assert boot["term"].str.startswith("family[").any() and (boot["df"] == 6).all()


def test_question_bootstrap_identity_link_matches_model_level_ols(small_panel):
    """With the identity link and every model in every condition, the question-level
    slopes are the model-level OLS slopes (same data, same weights)."""
    tidy, met = small_panel
    boot = S.fit_question_bootstrap(
        tidy, ["greedy_correct"], link="identity", include_family=False, B=50
    )
    ref = boot.set_index("term").loc["log10_params", "estimate"]
    cb = met[met.condition == CLOSED_BOOK]
    x = np.log10(cb["params_b"].to_numpy())
    assert ref == pytest.approx(np.polyfit(x, cb["accuracy"], 1)[0], abs=1e-9)


# ----------------------------------------------------------- parameter recovery


def test_parameter_recovery_coverage():
    """The per-condition path (the one real data takes), bounded on both sides; the
    long two-sided checks are in test_scaling_inference.py (slow)."""
    res = S.parameter_recovery(reps=20, seed=200, by_condition=True)
    print(f"parameter-recovery coverage over 20 reps x 6 slopes: {res.coverage:.3f}")
    print(res.summary.to_string())
    assert len(res.per_fit) == 20 * 2 * 3
    assert 0.88 <= res.coverage <= 0.99
    assert res.summary["mean_bias"].abs().max() < 0.005
    se_over_sd = res.summary["mean_se"] / res.summary["sd_slope"]
    assert se_over_sd.between(0.7, 1.4).all(), se_over_sd


# -------------------------------------------------------- variance decomposition


def _designed(cond_sd: float, fam_sd: float, noise: float = 1e-3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    conds = [f"c{i}" for i in range(4)]
    fams = [f"f{i}" for i in range(5)]
    ce = dict(zip(conds, rng.normal(0, cond_sd, 4), strict=True))
    fe = dict(zip(fams, rng.normal(0, fam_sd, 5), strict=True))
    rows = [
        {
            "model": f"{f}-m{k}",
            "family": f,
            "params_b": float(2 ** (k + 1)),
            "condition": c,
            "accuracy": 0.5 + ce[c] + fe[f] + rng.normal(0, noise),
        }
        for f in fams
        for k in range(3)
        for c in conds
    ]
    return pd.DataFrame(rows)


def test_variance_decomposition_recovers_design():
    met = _designed(0.1, 0.05)
    out = S.variance_decomposition(met, ["accuracy"], include_size=False)
    assert list(out.columns) == S.VARIANCE_COLUMNS
    r = out.iloc[0]
    # Balanced design: the designed sums of squares split exactly.
    y = met["accuracy"]
    ss_c = (met.groupby("condition")["accuracy"].transform("mean") - y.mean()).pow(2).sum()
    ss_f = (met.groupby("family")["accuracy"].transform("mean") - y.mean()).pow(2).sum()
    ss_t = ((y - y.mean()) ** 2).sum()
    assert r.share_condition == pytest.approx(ss_c / ss_t, abs=1e-9)
    assert r.share_family == pytest.approx(ss_f / ss_t, abs=1e-9)
    assert r.share_condition + r.share_family + r.share_residual == pytest.approx(1.0)
    assert abs(r.share_shared) < 1e-9
    assert r.share_residual < 0.01


def test_variance_decomposition_one_level_factor():
    met = _designed(0.1, 0.05)
    one = met[met.condition == "c0"]
    r = S.variance_decomposition(one, ["accuracy"], include_size=False).iloc[0]
    assert r.share_condition == 0.0 and "condition has one level" in r.note
    assert r.share_family + r.share_residual == pytest.approx(1.0)


@settings(max_examples=15, deadline=None)
@given(
    drop=st.integers(min_value=0, max_value=20),
    cond_sd=st.floats(0.0, 0.2),
    fam_sd=st.floats(0.0, 0.2),
    size=st.booleans(),
)
def test_variance_shares_sum_to_one(drop, cond_sd, fam_sd, size):
    met = _designed(cond_sd, fam_sd, noise=0.01).iloc[drop:]  # unbalanced when drop > 0
    r = S.variance_decomposition(met, ["accuracy"], include_size=size, B=0).iloc[0]
    parts = [r.share_condition, r.share_family, r.share_residual, r.share_shared]
    if size:
        parts.append(r.share_size)
    assert sum(parts) == pytest.approx(1.0)
    assert r.share_residual >= 0


def test_variance_family_not_identifiable_when_family_is_model():
    """One model per family: family = model, so no family share (the 0.69 of issue 16)."""
    met = _designed(0.1, 0.05)
    one = met[met.model.str.endswith("-m0")]
    r = S.variance_decomposition(one, ["accuracy"]).iloc[0]
    assert np.isnan(r.share_family) and "family not identifiable" in r.note
    assert np.isfinite(r.share_size) and np.isfinite(r.share_condition)


def test_variance_shares_have_bootstrap_intervals_around_them():
    met = _designed(0.1, 0.05, noise=0.02)
    r = S.variance_decomposition(met, ["accuracy"], B=100, seed=1).iloc[0]
    for part in ("condition", "family", "size"):
        lo, hi, point = r[f"share_{part}_low"], r[f"share_{part}_high"], r[f"share_{part}"]
        assert 0 <= lo <= hi <= 1 and lo <= point + 0.05 and point - 0.05 <= hi, part
    again = S.variance_decomposition(met, ["accuracy"], B=100, seed=1)
    pd.testing.assert_frame_equal(again, S.variance_decomposition(met, ["accuracy"], B=100, seed=1))
