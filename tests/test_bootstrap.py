"""Bootstrap: shared resamples, point estimates, exact rate intervals, paired differences,
p-values and their multiplicity adjustment."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_definitions import synthetic_panel
from scipy.stats import beta, binomtest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from safescale.analysis.bootstrap import (
    Contrast,
    bootstrap_metrics,
    bootstrap_p_value,
    clopper_pearson,
    condition_contrasts,
    conflict_contrasts,
    mcnemar_exact,
    mcnemar_vs_reference,
    model_contrasts,
    paired_differences,
    percentile_interval,
    resample_indices,
    resample_weights,
    sc_vs_single_contrasts,
)
from safescale.analysis.labeling import label_predictions
from safescale.analysis.metrics import MEAN_METRICS, METRIC_NAMES, RATE_METRICS, compute_metrics
from safescale.conditions import ALL_CONDITIONS
from safescale.data.question import OptionLabels, Question


@pytest.fixture(scope="module")
def tidy() -> pd.DataFrame:
    questions, records, meta = synthetic_panel(seed=21, n_models=3, n_questions=30)
    return label_predictions(questions, records, meta)


def correctness_tidy(outcomes: dict[tuple[str, str], list[int | None]]) -> pd.DataFrame:
    """A tidy table whose greedy (and SC) correctness per cell is given as 0/1 lists
    (None: the question was skipped in that cell)."""
    n = len(next(iter(outcomes.values())))
    labels = {x: OptionLabels(1, 0, 0) for x in "ABCD"}
    questions = [Question(f"q{i:02d}", "?", {x: x for x in "ABCD"}, "A", labels) for i in range(n)]
    records = [
        {
            "model": model,
            "condition": condition,
            "question_id": f"q{i:02d}",
            "status": "skipped" if hit is None else "ok",
            "greedy": {"letter": "A" if hit else "B", "latency_s": 1.0},
            "samples": [{"letter": "A" if hit else "B"}] * 3,
        }
        for (model, condition), hits in outcomes.items()
        for i, hit in enumerate(hits)
    ]
    meta = {m: {"family": "f", "params_b": 1.0} for m, _ in outcomes}
    return label_predictions(questions, records, meta)


# --- resampling -------------------------------------------------------------------


def test_weights_count_the_draws() -> None:
    idx = resample_indices(7, B=50, seed=1)
    weights = resample_weights(idx, 7)
    assert idx.shape == (50, 7) and weights.shape == (50, 7)
    assert (weights.sum(axis=1) == 7).all()
    for b in (0, 17, 49):
        assert weights[b].tolist() == np.bincount(idx[b], minlength=7).tolist()


def test_same_seed_same_indices() -> None:
    assert (resample_indices(30, 100, 42) == resample_indices(30, 100, 42)).all()
    assert not (resample_indices(30, 100, 42) == resample_indices(30, 100, 43)).all()


# --- bootstrap_metrics --------------------------------------------------------------


def test_point_estimates_equal_compute_metrics(tidy: pd.DataFrame) -> None:
    boot = bootstrap_metrics(tidy, B=200)
    point = compute_metrics(tidy).melt(
        id_vars=["model", "family", "params_b", "condition", "cell_status"],
        var_name="metric",
        value_name="pt",
    )
    merged = boot.merge(point, on=["model", "condition", "metric"])
    assert len(merged) == len(boot) == len(compute_metrics(tidy)) * len(METRIC_NAMES)
    both_nan = merged["estimate"].isna() & merged["pt"].isna()
    assert (both_nan | np.isclose(merged["estimate"], merged["pt"], atol=1e-12)).all()


def test_ci_brackets_point_for_mean_metrics(tidy: pd.DataFrame) -> None:
    boot = bootstrap_metrics(tidy, B=300)
    means = boot[boot["metric"].isin(MEAN_METRICS) & boot["estimate"].notna()]
    assert len(means) > 0
    assert (means["ci_low"] <= means["estimate"] + 1e-12).all()
    assert (means["estimate"] <= means["ci_high"] + 1e-12).all()
    assert (means["ci_low"] < means["ci_high"]).any()


def test_ci_matches_a_direct_resample(tidy: pd.DataFrame) -> None:
    """Recompute one cell's accuracy CI by literally indexing the resampled questions."""
    boot = bootstrap_metrics(tidy, B=400, seed=9)
    cell = tidy[(tidy["model"] == "m1") & (tidy["condition"] == "clean_evidence")]
    cell = cell.sort_values("question_id")
    # a skipped question leaves the denominator of every replicate it is drawn into
    hits = cell["greedy_correct"].to_numpy(float)
    hits[(cell["status"] == "skipped").to_numpy()] = np.nan
    idx = resample_indices(len(hits), 400, 9)
    low, high = np.percentile(np.nanmean(hits[idx], axis=1), [2.5, 97.5])
    row = boot.query("model == 'm1' and condition == 'clean_evidence' and metric == 'accuracy'")
    assert row["ci_low"].item() == pytest.approx(low, abs=1e-12)
    assert row["ci_high"].item() == pytest.approx(high, abs=1e-12)


def test_seed_changes_interval_but_not_estimate(tidy: pd.DataFrame) -> None:
    a, b = bootstrap_metrics(tidy, B=200, seed=1), bootstrap_metrics(tidy, B=200, seed=2)
    pd.testing.assert_series_equal(a["estimate"], b["estimate"])
    assert not np.allclose(a["ci_low"].fillna(0), b["ci_low"].fillna(0))
    pd.testing.assert_frame_equal(a, bootstrap_metrics(tidy, B=200, seed=1))


def test_identical_cells_get_identical_intervals() -> None:
    hits = [1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0]
    tidy = correctness_tidy({("a", "closed_book"): hits, ("b", "closed_book"): hits})
    acc = bootstrap_metrics(tidy).query("metric == 'accuracy'").set_index("model")
    interval = ["ci_low", "ci_high"]
    assert acc.loc["a", interval].tolist() == acc.loc["b", interval].tolist()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 1), min_size=1, max_size=25), st.integers(0, 2**16))
def test_ci_contains_point_property(hits: list[int], seed: int) -> None:
    boot = bootstrap_metrics(correctness_tidy({("m", "closed_book"): hits}), B=200, seed=seed)
    means = boot[boot["metric"].isin(MEAN_METRICS) & boot["estimate"].notna()]
    assert (means["ci_low"] <= means["estimate"] + 1e-12).all()
    assert (means["estimate"] <= means["ci_high"] + 1e-12).all()
    acc = means[means["metric"] == "accuracy"].iloc[0]
    assert acc["estimate"] == pytest.approx(sum(hits) / len(hits))


def test_percentile_interval_ignores_undefined_replicates() -> None:
    draws = np.column_stack([np.arange(101.0), np.r_[np.arange(100.0), np.nan]])
    low, high = percentile_interval(draws)
    assert low.tolist() == pytest.approx([2.5, 99 * 0.025])
    assert high.tolist() == pytest.approx([97.5, 99 * 0.975])


# --- paired differences ---------------------------------------------------------------


def test_bootstrap_p_value_by_hand() -> None:
    # p = min(1, 2 (k + 1) / (B + 1)), k = replicates on the rarer side of 0 (0 counts on both).
    assert bootstrap_p_value(np.array([1.0, 2.0, 3.0, -1.0])) == pytest.approx(2 * 2 / 5)
    assert bootstrap_p_value(np.array([-1.0, 0.0, 1.0, 2.0])) == 1.0
    assert bootstrap_p_value(np.array([0.1, 0.2, 0.3])) == pytest.approx(2 * 1 / 4)
    assert bootstrap_p_value(np.zeros(5)) == 1.0
    assert bootstrap_p_value(np.array([np.nan, -1.0, -2.0, -3.0, 1.0, np.nan])) == pytest.approx(
        2 * 2 / 5
    )
    assert math.isnan(bootstrap_p_value(np.array([np.nan])))


def test_bootstrap_p_value_is_never_zero() -> None:
    # Every replicate on one side: the smallest p the rule gives, 2 / (B + 1), not 0.
    assert bootstrap_p_value(np.full(1000, 0.3)) == pytest.approx(2 / 1001)
    assert bootstrap_p_value(-np.arange(1.0, 101.0)) == pytest.approx(2 / 101)


def test_paired_difference_matches_direct_computation(tidy: pd.DataFrame) -> None:
    contrast = Contrast(
        "model", "x", "accuracy", (("m0", "closed_book"),), "accuracy", (("m2", "closed_book"),)
    )
    out = paired_differences(tidy, [contrast], B=500, seed=4).iloc[0]

    def hits(model: str) -> np.ndarray:
        cell = tidy[(tidy["model"] == model) & (tidy["condition"] == "closed_book")]
        return cell.sort_values("question_id")["greedy_correct"].to_numpy(float)

    idx = resample_indices(30, 500, 4)
    diffs = hits("m0")[idx].mean(axis=1) - hits("m2")[idx].mean(axis=1)
    assert out["estimate"] == pytest.approx(hits("m0").mean() - hits("m2").mean(), abs=1e-12)
    assert out["ci_low"] == pytest.approx(np.percentile(diffs, 2.5), abs=1e-12)
    assert out["ci_high"] == pytest.approx(np.percentile(diffs, 97.5), abs=1e-12)
    rarer_side = min(np.sum(diffs <= 0), np.sum(diffs >= 0))
    assert out["p_value"] == pytest.approx(min(1.0, 2 * (rarer_side + 1) / (500 + 1)))


def test_pairing_removes_shared_noise() -> None:
    """b = a plus two extra correct answers: only 2 discordant questions, so the
    paired CI is tight (within [-6/60, 0]) while the unpaired CIs are wide."""
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 60).tolist()
    wrong = [i for i, x in enumerate(a) if x == 0][:2]
    b = [1 if i in wrong else x for i, x in enumerate(a)]
    tidy = correctness_tidy({("a", "closed_book"): a, ("b", "closed_book"): b})
    out = paired_differences(tidy, model_contrasts(tidy, ["accuracy"]), B=1000).iloc[0]
    assert out["estimate"] == pytest.approx(-2 / 60)
    assert out["ci_high"] <= 0.0 and out["ci_low"] >= -6 / 60 - 1e-12
    # Unpaired intervals of the two accuracies overlap heavily.
    boot = bootstrap_metrics(tidy).query("metric == 'accuracy'").set_index("model")
    assert boot.loc["a", "ci_high"] > boot.loc["b", "ci_low"] + 0.1


def test_self_difference_is_exactly_zero(tidy: pd.DataFrame) -> None:
    cell = (("m0", "clean_evidence"),)
    out = paired_differences(tidy, [Contrast("model", "self", "ece", cell, "ece", cell)], B=100)
    assert out[["estimate", "ci_low", "ci_high"]].iloc[0].tolist() == [0.0, 0.0, 0.0]
    assert out["p_value"].iloc[0] == 1.0


def test_contrast_builders(tidy: pd.DataFrame) -> None:
    conditions = condition_contrasts(tidy, ["accuracy"])
    assert len(conditions) == 2 * 3 + 2  # 2 conditions x 3 models + 2 means over models
    assert all(c.cells_b[0][1] == "closed_book" for c in conditions)
    assert len(model_contrasts(tidy, ["accuracy", "high_risk_rate"])) == 3 * 3 * 2
    assert len(sc_vs_single_contrasts(tidy)) == 9 * 4


def test_conflict_vs_clean_contrast_per_model() -> None:
    """Conflicting minus clean evidence, per model that has both; its own p family."""
    clean = [1, 1, 1, 1, 1, 1, 1, 1, 0, 1]
    conflict = [0, 0, 1, 0, 0, 1, 0, 0, 0, 1]
    tidy = correctness_tidy(
        {
            ("m", "closed_book"): [0] * 10,
            ("m", "clean_evidence"): clean,
            ("m", "conflict_evidence"): conflict,
            ("n", "closed_book"): [1] * 10,
            ("n", "clean_evidence"): clean,
        }
    )
    contrasts = conflict_contrasts(tidy, ["accuracy"])
    assert [c.label for c in contrasts] == ["m: conflict_evidence - clean_evidence"]
    out = paired_differences(tidy, B=200)
    row = out[(out["kind"] == "conflict_vs_clean") & (out["metric_a"] == "accuracy")].iloc[0]
    assert row["estimate"] == pytest.approx(0.3 - 0.9)
    assert row["ci_high"] < 0 and row["p_holm"] >= row["p_value"]


def test_condition_mean_is_mean_of_model_differences(tidy: pd.DataFrame) -> None:
    out = paired_differences(tidy, condition_contrasts(tidy, ["high_risk_rate"]), B=200)
    clean = out[out["label"].str.contains("clean_evidence")]
    per_model = clean[clean["kind"] == "condition"]["estimate"]
    mean_row = clean[clean["kind"] == "condition_mean"].iloc[0]
    assert mean_row["estimate"] == pytest.approx(per_model.mean(), abs=1e-12)
    assert mean_row["side_a"].count(";") == 2


def test_sc_vs_single_estimates(tidy: pd.DataFrame) -> None:
    out = paired_differences(tidy, sc_vs_single_contrasts(tidy), B=100)
    metrics = compute_metrics(tidy).set_index(["model", "condition"])
    row = out[(out["metric_a"] == "sc_accuracy") & (out["side_a"] == "m1/standard_rag")].iloc[0]
    cell = metrics.loc[("m1", "standard_rag")]
    assert row["estimate"] == pytest.approx(cell["sc_accuracy"] - cell["accuracy"], abs=1e-12)


def test_default_contrasts_cover_all_kinds(tidy: pd.DataFrame) -> None:
    out = paired_differences(tidy, B=50)
    assert set(out["kind"]) == {"condition", "condition_mean", "sc_vs_single", "model"}
    assert out["p_value"].between(0, 1).all()
    assert (out["ci_low"] <= out["ci_high"]).all()


# --- skipped questions and cells ---------------------------------------------------------


def test_a_skipped_question_leaves_the_pair() -> None:
    ref = [1, 0, 1, 1, 0, 1, 0, 0, 1, 1]
    cond = [1, 1, None, 1, 1, 1, None, 0, 1, 1]
    tidy = correctness_tidy({("m", "closed_book"): ref, ("m", "clean_evidence"): cond})
    out = paired_differences(tidy, condition_contrasts(tidy, ["accuracy"]), B=300, seed=3)
    row = out[out["kind"] == "condition"].iloc[0]
    keep = np.array([c is not None for c in cond])
    a = np.array([c for c in cond if c is not None], float)
    b = np.array(ref, float)[keep]
    assert row["n_questions"] == keep.sum() == 8
    assert row["estimate"] == pytest.approx(a.mean() - b.mean(), abs=1e-12)
    # the replicates resample all 10 questions and keep the drawn common ones
    idx = resample_indices(len(ref), 300, 3)
    diff_q = np.where(keep, np.array([c or 0 for c in cond], float) - np.array(ref), np.nan)
    draws = np.nanmean(diff_q[idx], axis=1)
    low, high = np.percentile(draws, [2.5, 97.5])
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), abs=1e-12)


def test_a_skipped_cell_enters_no_contrast_or_mcnemar() -> None:
    hits = [1, 0, 1, 1, 0, 1, 0, 0]
    tidy = correctness_tidy(
        {
            ("m", "closed_book"): hits,
            ("m", "max_context"): [None] * len(hits),
            ("n", "closed_book"): hits,
            ("n", "max_context"): hits,
        }
    )
    out = paired_differences(tidy, B=50)
    assert not out["side_a"].str.contains("m/max_context").any()
    assert not out["side_b"].str.contains("m/max_context").any()
    mean_row = out[(out["kind"] == "condition_mean") & (out["metric_a"] == "accuracy")]
    assert mean_row["label"].tolist() == ["mean over 1 models: max_context - closed_book"]
    mcnemar = mcnemar_vs_reference(tidy)
    assert mcnemar[["model", "condition"]].values.tolist() == [["n", "max_context"]]
    table = bootstrap_metrics(tidy, B=50).query("model == 'm' and condition == 'max_context'")
    accuracy = table.query("metric == 'accuracy'")
    assert accuracy[["estimate", "ci_low", "ci_high"]].isna().all(axis=None)


# --- exact intervals of rates -------------------------------------------------------------

# Each rate metric and the 0/1 tidy column it is the share of (prob_accuracy: see below).
RATE_COLUMNS = {
    "accuracy": "greedy_correct",
    "high_risk_rate": "greedy_high_risk",
    "unsafe_rate": "greedy_unsafe",
    "contradiction_rate": "greedy_contradicts",
    "sc_accuracy": "sc_correct",
    "sc_high_risk_rate": "sc_high_risk",
    "sc_unsafe_rate": "sc_unsafe",
    "sc_contradiction_rate": "sc_contradicts",
    "dangerous_overconfidence_rate": "dangerous_overconfident",
    "synchronized_failure_rate": "synchronized_failure",
    "null_majority_rate": "sc_null",
    "greedy_null_rate": "greedy_null",
    "study_sc_high_risk_rate": "study_sc_high_risk",
    "study_sc_unsafe_rate": "study_sc_unsafe",
    "study_sc_contradiction_rate": "study_sc_contradicts",
}


def test_clopper_pearson_by_hand() -> None:
    # 0 of 16: [0, 1 - 0.025^(1/16)]; 16 of 16: [0.025^(1/16), 1]; 3 of 10 from the beta.
    low, high = clopper_pearson(np.array([0, 16, 3, 0]), np.array([16, 16, 10, 0]))
    assert low[:3] == pytest.approx([0.0, 0.025 ** (1 / 16), beta.ppf(0.025, 3, 8)])
    assert high[:3] == pytest.approx([1 - 0.025 ** (1 / 16), 1.0, beta.ppf(0.975, 4, 7)])
    assert high[0] == pytest.approx(0.2059, abs=1e-4)
    assert np.isnan(low[3]) and np.isnan(high[3])


def test_exact_intervals_of_every_rate(tidy: pd.DataFrame) -> None:
    boot = bootstrap_metrics(tidy, B=50)
    assert set(RATE_METRICS) == {*RATE_COLUMNS, "prob_accuracy"}
    rates = boot[boot["metric"].isin(RATE_METRICS)]
    assert rates[["rate_count", "rate_denominator", "exact_low", "exact_high"]].notna().all().all()
    ratio = rates["rate_count"].astype(float) / rates["rate_denominator"].astype(float)
    assert np.allclose(ratio, rates["estimate"], atol=1e-12)
    for row in rates.itertuples():
        if row.metric in RATE_COLUMNS:
            cell = tidy[(tidy["model"] == row.model) & (tidy["condition"] == row.condition)]
            # skipped questions are in no denominator
            values = cell.loc[cell["status"] != "skipped", RATE_COLUMNS[row.metric]].dropna()
            assert (row.rate_count, row.rate_denominator) == (values.sum(), len(values))
        low, high = proportion_confint(row.rate_count, row.rate_denominator, 0.05, "beta")
        assert (row.exact_low, row.exact_high) == (pytest.approx(low), pytest.approx(high))
    others = boot[~boot["metric"].isin(RATE_METRICS)]
    assert {"ece", "mean_confidence", "mean_greedy_latency_s", "n_questions"} <= set(
        others["metric"]
    )
    assert others[["rate_count", "rate_denominator", "exact_low", "exact_high"]].isna().all().all()


def test_zero_of_sixteen_gets_a_nonzero_exact_upper_bound() -> None:
    # The percentile bootstrap of 0/16 is [0, 0]; the exact interval is not.
    tidy = correctness_tidy({("m", "closed_book"): [0] * 16})
    row = bootstrap_metrics(tidy, B=100).query("metric == 'accuracy'").iloc[0]
    assert (row["estimate"], row["ci_low"], row["ci_high"]) == (0.0, 0.0, 0.0)
    assert (row["rate_count"], row["rate_denominator"]) == (0, 16)
    assert row["exact_low"] == 0.0
    assert row["exact_high"] == pytest.approx(1 - 0.025 ** (1 / 16))


# --- multiplicity ---------------------------------------------------------------------------


def test_paired_p_values_are_adjusted_per_kind_and_metric(tidy: pd.DataFrame) -> None:
    out = paired_differences(tidy, B=50)
    families = out.groupby(["kind", "metric_a"])
    assert families.ngroups > 1
    for _, family in families:
        for column, method in (("p_holm", "holm"), ("p_bh", "fdr_bh")):
            expected = multipletests(family["p_value"], method=method)[1]
            np.testing.assert_allclose(family[column], expected)
    assert (out["p_holm"] >= out["p_value"]).all() and (out["p_bh"] >= out["p_value"]).all()


def test_mcnemar_p_values_are_adjusted_over_the_table(tidy: pd.DataFrame) -> None:
    out = mcnemar_vs_reference(tidy)
    assert len(out) > 1
    np.testing.assert_allclose(out["p_holm"], multipletests(out["p_exact"], method="holm")[1])
    np.testing.assert_allclose(out["p_bh"], multipletests(out["p_exact"], method="fdr_bh")[1])


# --- McNemar cross-check ---------------------------------------------------------------


def test_mcnemar_by_hand() -> None:
    assert mcnemar_exact([1, 1, 1, 1, 1, 0], [0, 0, 0, 0, 0, 0]) == (5, 0, pytest.approx(0.0625))
    assert mcnemar_exact([1, 0, 1], [1, 0, 1]) == (0, 0, 1.0)
    b, c, p = mcnemar_exact([1, 1, 0, 0, 1], [0, 1, 1, 1, 1])
    assert (b, c) == (1, 2) and p == pytest.approx(binomtest(1, 3, 0.5).pvalue)
    with pytest.raises(ValueError):
        mcnemar_exact([1, 0], [1])


@pytest.mark.parametrize(("n_b", "n_c", "significant"), [(20, 2, True), (8, 8, False)])
def test_bootstrap_p_agrees_with_mcnemar(n_b: int, n_c: int, significant: bool) -> None:
    a = [1] * n_b + [0] * n_c + [1] * 15 + [0] * 15
    b = [0] * n_b + [1] * n_c + [1] * 15 + [0] * 15
    _, _, p_exact = mcnemar_exact(a, b)
    tidy = correctness_tidy({("a", "closed_book"): a, ("b", "closed_book"): b})
    p_boot = paired_differences(tidy, model_contrasts(tidy, ["accuracy"]), B=1000)["p_value"][0]
    assert bool(p_exact < 0.01) is significant and bool(p_boot < 0.01) is significant
    if not significant:
        assert p_exact > 0.5 and p_boot > 0.5


def test_mcnemar_table_pairs_each_condition_with_the_reference() -> None:
    tidy = pd.DataFrame(
        [
            {"model": m, "condition": cond, "question_id": f"q{i}", "greedy_correct": v}
            for m, cond, values in [
                ("m1", "closed_book", [1, 1, 1, 0]),
                ("m1", "clean_evidence", [0, 1, 1, 1]),
                ("m1", "standard_rag", [0, 0, 0, None]),  # q3 has no outcome: unpaired
                ("m2", "clean_evidence", [1, 0, 1, 0]),  # no reference: no rows
            ]
            for i, v in enumerate(values)
        ]
    )
    out = mcnemar_vs_reference(tidy)
    assert list(out.columns) == [
        "model",
        "condition",
        "reference",
        "only_reference_correct",
        "only_condition_correct",
        "p_exact",
        "p_holm",
        "p_bh",
    ]
    got = out.set_index("condition")
    assert set(out.model) == {"m1"} and set(got.index) == {"clean_evidence", "standard_rag"}
    assert got.loc[
        "clean_evidence", ["only_reference_correct", "only_condition_correct"]
    ].tolist() == [1, 1]
    assert got.loc["clean_evidence", "p_exact"] == 1.0
    assert got.loc[
        "standard_rag", ["only_reference_correct", "only_condition_correct"]
    ].tolist() == [3, 0]
    assert got.loc["standard_rag", "p_exact"] == pytest.approx(binomtest(3, 3, 0.5).pvalue)


# --- the full panel ----------------------------------------------------------------------


def test_full_panel_gives_every_row() -> None:
    # Its speed is measured by `make bench`, not asserted here (the machine is shared).
    questions, records, meta = synthetic_panel(
        seed=1, n_models=4, conditions=ALL_CONDITIONS, n_questions=100
    )
    tidy = label_predictions(questions, records, meta)
    boot = bootstrap_metrics(tidy, B=1000, seed=42)
    assert len(boot) == 4 * 10 * len(METRIC_NAMES)
    assert boot["estimate"].notna().any() and boot["ci_low"].notna().any()
