"""Tests of the confidence gate: hand-computed curves, oracle bounds, ties, bootstrap, tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests

from safescale.analysis import riskcoverage
from safescale.analysis.bootstrap import resample_counts, resample_indices
from safescale.analysis.gate import (
    RISKS,
    SIGNALS,
    gate_condition_contrasts,
    gate_curves,
    gate_errors,
    gate_signal_contrasts,
    gate_table,
)
from safescale.analysis.riskcoverage import (
    aurc,
    bootstrap_gate,
    coverage_at_risk,
    excess_aurc,
    optimal_aurc,
    risk_at_coverage,
    risk_coverage_curve,
)

# ---------------------------------------------------------------- hand cases


def test_curve_hand_case_without_ties():
    # conf 0.9 0.8 0.3 0.1 with errors 0 0 1 1 (perfect ranking):
    # points (0.25, 0), (0.5, 0), (0.75, 1/3), (1, 1/2).
    curve = risk_coverage_curve([0.3, 0.9, 0.1, 0.8], [1, 0, 1, 0])
    assert curve["threshold"].tolist() == [0.9, 0.8, 0.3, 0.1]
    assert curve["coverage"].tolist() == [0.25, 0.5, 0.75, 1.0]
    assert curve["risk"].tolist() == pytest.approx([0.0, 0.0, 1 / 3, 0.5])
    assert curve["n_answered"].tolist() == [1, 2, 3, 4]
    assert curve["n_errors"].tolist() == [0, 0, 1, 2]


def test_perfect_ranking_reaches_hand_computed_oracle():
    # AURC = (0 + 0 + 1/3 + 1/2) / 4 = 5/24; oracle formula
    # (e - m (H_4 - H_2)) / 4 with e = m = 2 gives (2 - 2 * 7/12) / 4 = 5/24.
    conf, err = [0.9, 0.8, 0.3, 0.1], [0, 0, 1, 1]
    assert aurc(conf, err) == pytest.approx(5 / 24)
    assert optimal_aurc(err) == pytest.approx(5 / 24)
    assert excess_aurc(conf, err) == pytest.approx(0.0, abs=1e-12)


def test_reversed_ranking_is_worse_than_oracle():
    # errors first: risks 1, 1, 2/3, 1/2 -> AURC = (1 + 1 + 2/3 + 1/2) / 4 = 19/24.
    conf, err = [0.1, 0.3, 0.8, 0.9], [0, 0, 1, 1]
    assert aurc(conf, err) == pytest.approx(19 / 24)
    assert excess_aurc(conf, err) == pytest.approx(19 / 24 - 5 / 24)


def test_all_equal_confidence_is_single_point_at_base_rate():
    err = [1, 0, 0, 0, 1, 0, 0, 0]
    curve = risk_coverage_curve([0.5] * 8, err)
    assert len(curve) == 1
    assert curve.loc[0, "coverage"] == 1.0
    assert curve.loc[0, "risk"] == pytest.approx(0.25)
    assert aurc([0.5] * 8, err) == pytest.approx(0.25)
    assert coverage_at_risk([0.5] * 8, err, 0.2) == 0.0
    assert coverage_at_risk([0.5] * 8, err, 0.25) == 1.0


def test_ties_are_admitted_together_hand_case():
    # conf .9 .9 .5 .2, err 0 0 1 0: points (0.5, 0), (0.75, 1/3), (1, 1/4)
    # AURC = 0.5 * 0 + 0.25 * 1/3 + 0.25 * 1/4 = 7/48.
    conf, err = [0.9, 0.9, 0.5, 0.2], [0, 0, 1, 0]
    curve = risk_coverage_curve(conf, err)
    assert curve["coverage"].tolist() == [0.5, 0.75, 1.0]
    assert aurc(conf, err) == pytest.approx(7 / 48)
    # A tie between a correct answer and an error cannot be split: with the
    # pair tied the first point already has risk 1/2, so AURC = 1/2 here.
    assert aurc([0.9, 0.9, 0.5, 0.5], [0, 1, 0, 1]) == pytest.approx(0.5)
    # Tied errors stay above the oracle (which needs distinct confidences): 1/4 > 5/24.
    assert aurc([0.9, 0.9, 0.1, 0.1], [0, 0, 1, 1]) == pytest.approx(0.25)


def test_coverage_at_risk_hand_case_and_non_monotone_curve():
    conf, err = [0.9, 0.9, 0.5, 0.2], [0, 0, 1, 0]
    assert coverage_at_risk(conf, err, 0.0) == 0.5
    assert coverage_at_risk(conf, err, 0.3) == 1.0  # 1/4 <= 0.3 although 0.75 has 1/3
    assert coverage_at_risk(conf, err, 0.4) == 1.0
    assert coverage_at_risk([0.9, 0.8], [1, 1], 0.5) == 0.0  # no threshold meets it


def test_coverage_at_risk_exact_rate_is_met():
    # 2 errors in 200 is exactly 1%: the target must be met despite float division.
    err = np.r_[np.ones(2), np.zeros(198)]
    conf = np.zeros(200)
    assert coverage_at_risk(conf, err, 0.01) == 1.0


def test_risk_at_coverage_takes_strictest_threshold_reaching_it():
    conf, err = [0.9, 0.9, 0.5, 0.2], [0, 0, 1, 0]
    assert risk_at_coverage(conf, err, 0.5) == 0.0
    assert risk_at_coverage(conf, err, 0.6) == pytest.approx(1 / 3)
    assert risk_at_coverage(conf, err, 1.0) == pytest.approx(0.25)


def test_random_ranking_is_close_to_base_rate_and_far_from_oracle():
    rng = np.random.default_rng(7)
    n = 20_000
    err = (rng.random(n) < 0.3).astype(float)
    conf = rng.random(n)
    base = err.mean()
    # Across seeds the deviation has sd ~0.003 at this n; 0.015 is five sd.
    assert aurc(conf, err) == pytest.approx(base, abs=0.015)
    assert optimal_aurc(err) < base - 0.1


def test_invalid_inputs_raise():
    with pytest.raises(ValueError):
        aurc([0.5, np.nan], [0, 1])
    with pytest.raises(ValueError):
        aurc([0.5, 0.4], [0, 2])
    with pytest.raises(ValueError):
        aurc([], [])
    with pytest.raises(ValueError):
        risk_at_coverage([0.5], [0], 0.0)


# ---------------------------------------------------------------- properties

cases = st.integers(min_value=1, max_value=40).flatmap(
    lambda n: st.tuples(
        st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.7, 0.9, 1.0]), min_size=n, max_size=n),
        st.lists(st.sampled_from([0, 1]), min_size=n, max_size=n),
    )
)


@settings(max_examples=200, deadline=None)
@given(cases, st.randoms(use_true_random=False))
def test_order_invariance(case, rnd):
    conf, err = case
    perm = list(range(len(conf)))
    rnd.shuffle(perm)
    conf2 = [conf[i] for i in perm]
    err2 = [err[i] for i in perm]
    pd.testing.assert_frame_equal(risk_coverage_curve(conf, err), risk_coverage_curve(conf2, err2))
    assert aurc(conf, err) == aurc(conf2, err2)
    assert coverage_at_risk(conf, err, 0.1) == coverage_at_risk(conf2, err2, 0.1)


@settings(max_examples=200, deadline=None)
@given(cases)
def test_curve_shape_and_bounds(case):
    conf, err = case
    curve = risk_coverage_curve(conf, err)
    # Coverage strictly increases as the threshold decreases, ending at 1 with the base rate.
    assert (np.diff(curve["threshold"]) < 0).all()
    assert (np.diff(curve["coverage"]) > 0).all()
    assert curve["coverage"].iloc[-1] == 1.0
    assert curve["risk"].iloc[-1] == pytest.approx(np.mean(err))
    assert len(curve) == len(set(conf))
    a = aurc(conf, err)
    # Oracle is a lower bound under the tie rule; AURC is a mean of risks in [0, 1].
    assert a >= optimal_aurc(err) - 1e-12
    assert 0.0 <= a <= 1.0 + 1e-12


@settings(max_examples=200, deadline=None)
@given(cases, st.floats(0, 1), st.floats(0, 1))
def test_coverage_at_risk_monotone_in_target(case, t1, t2):
    conf, err = case
    lo, hi = sorted((t1, t2))
    c_lo = coverage_at_risk(conf, err, lo)
    c_hi = coverage_at_risk(conf, err, hi)
    assert 0.0 <= c_lo <= c_hi <= 1.0
    if hi >= np.mean(err):
        assert c_hi == 1.0


@settings(max_examples=50, deadline=None)
@given(cases, st.integers(0, 2**31 - 1))
def test_resample_counts_equal_direct_resampling(case, seed):
    # One replicate through weights must equal the functions on the resampled data.
    conf, err = np.asarray(case[0]), np.asarray(case[1], dtype=float)
    n = len(conf)
    counts = resample_counts(n, B=3, seed=seed)
    idx = np.random.default_rng(seed).integers(0, n, size=(3, n))
    boot = bootstrap_gate(conf, err, counts, target=0.2, coverage=0.6)
    for b in range(3):
        c, e = conf[idx[b]], err[idx[b]]
        assert boot["aurc"][b] == pytest.approx(aurc(c, e))
        assert boot["optimal_aurc"][b] == pytest.approx(optimal_aurc(e), abs=1e-12)
        assert boot["coverage_at_target"][b] == pytest.approx(coverage_at_risk(c, e, 0.2))
        assert boot["risk_at_coverage"][b] == pytest.approx(risk_at_coverage(c, e, 0.6))


def test_matrix_and_sort_paths_agree(monkeypatch):
    # Small inputs use a matrix product, large ones sort + cumsum; both must agree exactly.
    rng = np.random.default_rng(3)
    conf = np.round(rng.random(300), 2)  # many ties
    err = (rng.random(300) < 0.2).astype(float)
    counts = resample_counts(300, B=50, seed=9)
    small = bootstrap_gate(conf, err, counts, target=0.1)
    curve_small = risk_coverage_curve(conf, err)
    monkeypatch.setattr(riskcoverage, "_MATMUL_LIMIT", 0)
    large = bootstrap_gate(conf, err, counts, target=0.1)
    pd.testing.assert_frame_equal(curve_small, risk_coverage_curve(conf, err))
    for key, values in small.items():
        np.testing.assert_array_equal(values, large[key], err_msg=key)


# ---------------------------------------------------------------- tidy table


def _make_tidy(seed: int = 0, n: int = 120) -> pd.DataFrame:
    """Two models x three conditions; model 'srv' has no logits (server backend)."""
    rng = np.random.default_rng(seed)
    rows = []
    qids = [f"q{i:03d}" for i in range(n)]
    p_wrong = {"closed_book": 0.35, "standard_rag": 0.25, "clean_evidence": 0.05}
    for model in ("local", "srv"):
        for cond, pw in p_wrong.items():
            for q in qids:
                conf = rng.random()
                # lower confidence -> more likely wrong, so the gate has signal
                wrong = rng.random() < pw * 2 * (1 - conf)
                null = wrong and rng.random() < 0.1
                hr = int(wrong and not null and rng.random() < 0.5)
                uns = int(wrong and not null and rng.random() < 0.3)
                has_logits = model == "local"
                rows.append(
                    {
                        "model": model,
                        "condition": cond,
                        "question_id": q,
                        "status": "ok",
                        "greedy_letter": None if null else ("B" if wrong else "A"),
                        "greedy_correct": int(not wrong),
                        "greedy_high_risk": hr,
                        "greedy_unsafe": uns,
                        "sc_majority": None if null else ("B" if wrong else "A"),
                        "sc_correct": int(not wrong),
                        "sc_high_risk": hr,
                        "sc_unsafe": uns,
                        "sc_confidence": round(conf, 2),
                        "prob_chosen": (0.0 if null else conf) if has_logits else None,
                        "prob_margin": conf * 0.8 if has_logits else None,
                    }
                )
    return pd.DataFrame(rows)


def test_gate_table_rows_columns_and_availability():
    tidy = _make_tidy()
    table = gate_table(tidy, B=200, seed=42, target_risk=0.05)
    assert len(table) == 2 * 3 * len(SIGNALS) * len(RISKS)
    assert not table.duplicated(["model", "condition", "signal", "risk_kind"]).any()
    srv = table[table["model"] == "srv"]
    assert srv.loc[srv["signal"] == "sc_confidence", "available"].all()
    missing = srv[srv["signal"] != "sc_confidence"]
    assert (~missing["available"]).all()
    assert missing["aurc"].isna().all()
    assert (missing["n_missing_signal"] == 120).all()
    assert (missing["note"] != "").all()
    local = table[table["available"]]
    assert (local["n_questions"] == 120).all()
    assert (local["answer"] == local["signal"].map({k: v.answer for k, v in SIGNALS.items()})).all()
    assert (local["e_aurc"] >= -1e-12).all()
    assert (local["aurc"] <= local["base_risk"] + 0.2).all()


def test_gate_table_cis_contain_estimates():
    table = gate_table(_make_tidy(), B=300, seed=42, target_risk=0.05)
    ok = table[table["available"]]
    for key in ("aurc", "e_aurc", "coverage_at_target"):
        assert ok[f"{key}_lo"].notna().all()
        assert (ok[f"{key}_lo"] <= ok[f"{key}_hi"]).all()
        inside = (ok[f"{key}_lo"] <= ok[key] + 1e-12) & (ok[key] <= ok[f"{key}_hi"] + 1e-12)
        assert inside.mean() > 0.9
    # AURC in particular must be covered in every cell of this data set.
    assert ((ok["aurc_lo"] <= ok["aurc"]) & (ok["aurc"] <= ok["aurc_hi"])).all()


def test_gate_table_matches_single_cell_functions():
    tidy = _make_tidy()
    table = gate_table(tidy, B=0, target_risk=0.05)
    cell = tidy[(tidy["model"] == "local") & (tidy["condition"] == "standard_rag")]
    err = gate_errors(cell, "prob_chosen", "high_risk")
    row = table[
        (table["model"] == "local")
        & (table["condition"] == "standard_rag")
        & (table["signal"] == "prob_chosen")
        & (table["risk_kind"] == "high_risk")
    ].iloc[0]
    assert row["aurc"] == pytest.approx(aurc(cell["prob_chosen"], err))
    assert row["coverage_at_target"] == pytest.approx(
        coverage_at_risk(cell["prob_chosen"], err, 0.05)
    )
    assert row["base_risk"] == pytest.approx(cell["greedy_high_risk"].mean())
    assert np.isnan(row["aurc_lo"])  # B = 0: no intervals


def test_gate_table_intervals_come_from_the_shared_resampling():
    # The gate's replicates are the data sets drawn by resample_indices over the sorted
    # question ids (the metrics' draws), so its CI equals the percentiles of direct recomputation.
    tidy = _make_tidy(n=40)
    B, seed = 60, 11
    table = gate_table(tidy, B=B, seed=seed, signals=["sc_confidence"], risks=["any_error"])
    cell = tidy[(tidy["model"] == "local") & (tidy["condition"] == "closed_book")]
    cell = cell.sort_values("question_id")
    conf = cell["sc_confidence"].to_numpy(dtype=float)
    err = gate_errors(cell, "sc_confidence", "any_error")
    idx = resample_indices(len(cell), B, seed)
    replicates = [aurc(conf[row], err[row]) for row in idx]
    row = table[(table["model"] == "local") & (table["condition"] == "closed_book")].iloc[0]
    low, high = np.quantile(replicates, [0.025, 0.975])
    assert row["aurc_lo"] == pytest.approx(low, abs=1e-12)
    assert row["aurc_hi"] == pytest.approx(high, abs=1e-12)


def test_gate_table_invariant_to_row_order():
    tidy = _make_tidy()
    shuffled = tidy.sample(frac=1.0, random_state=3).reset_index(drop=True)
    a = gate_table(tidy, B=100, seed=5)
    b = gate_table(shuffled, B=100, seed=5)
    pd.testing.assert_frame_equal(a, b)


def test_gate_errors_null_answer_rule():
    frame = pd.DataFrame(
        {
            "greedy_letter": [None, "A", "B"],
            "greedy_correct": [np.nan, 1, 0],
            "greedy_high_risk": [1, 0, 1],  # inconsistent 1 on the NULL row is overridden
            "greedy_unsafe": [1, 0, 0],
        }
    )
    assert gate_errors(frame, "prob_chosen", "any_error").tolist() == [1, 0, 1]
    assert gate_errors(frame, "prob_chosen", "high_risk").tolist() == [0, 0, 1]
    assert gate_errors(frame, "prob_margin", "unsafe").tolist() == [0, 0, 0]
    with pytest.raises(KeyError):
        gate_errors(frame, "prob_chosen", "nonsense")


def test_partially_missing_signal_is_ranked_lowest():
    tidy = _make_tidy(n=40)
    tidy = tidy[(tidy["model"] == "local") & (tidy["condition"] == "closed_book")].copy()
    tidy.loc[tidy.index[:3], "prob_margin"] = np.nan
    row = gate_table(tidy, B=0, signals=["prob_margin"], risks=["any_error"]).iloc[0]
    assert row["available"]
    assert row["n_missing_signal"] == 3
    expected = aurc(
        tidy["prob_margin"].fillna(-np.inf), gate_errors(tidy, "prob_margin", "any_error")
    )
    assert row["aurc"] == pytest.approx(expected)
    curves = gate_curves(tidy, signals=["prob_margin"], risks=["any_error"])
    assert curves["threshold"].iloc[-1] == -np.inf
    assert curves["coverage"].iloc[-2] == pytest.approx(37 / 40)


def test_cell_without_ok_records_is_not_available():
    tidy = _make_tidy(n=30)
    skipped = (tidy["model"] == "local") & (tidy["condition"] == "clean_evidence")
    tidy.loc[skipped, "status"] = "skipped"
    tidy.loc[tidy.index[0], "status"] = "error"  # one failed record elsewhere: still available
    table = gate_table(tidy, B=0)
    cell = table[(table["model"] == "local") & (table["condition"] == "clean_evidence")]
    assert (~cell["available"]).all()
    assert cell["aurc"].isna().all()
    assert cell["note"].str.contains("status ok").all()
    first = tidy.loc[tidy.index[0]]
    other = table[(table["model"] == first["model"]) & (table["condition"] == first["condition"])]
    assert other.loc[other["signal"] == "sc_confidence", "available"].all()
    assert other["note"].str.contains("1 records with status").all()
    curves = gate_curves(tidy)
    assert not ((curves["model"] == "local") & (curves["condition"] == "clean_evidence")).any()


def test_gate_curves_long_format():
    tidy = _make_tidy(n=30)
    curves = gate_curves(tidy)
    assert set(curves.columns) >= {"model", "condition", "signal", "risk_kind", "coverage", "risk"}
    # srv has only sc_confidence available
    assert set(curves.loc[curves["model"] == "srv", "signal"]) == {"sc_confidence"}
    last = curves.groupby(["model", "condition", "signal", "risk_kind"])["coverage"].last()
    assert (last == 1.0).all()
    mono = curves.groupby(["model", "condition", "signal", "risk_kind"])["coverage"].apply(
        lambda s: bool((np.diff(s) > 0).all())
    )
    assert mono.all()


def test_signal_contrasts_pairing_and_sign():
    tidy = _make_tidy()
    # Make prob_margin an oracle for the greedy answer and prob_chosen pure noise.
    rng = np.random.default_rng(11)
    tidy["prob_margin"] = (
        np.where(tidy["greedy_correct"] == 1, 0.6, 0.1) + rng.random(len(tidy)) * 0.01
    )
    tidy["prob_chosen"] = rng.random(len(tidy))
    tidy.loc[tidy["model"] == "srv", ["prob_chosen", "prob_margin"]] = np.nan
    out = gate_signal_contrasts(tidy, B=300, seed=42, risks=["any_error"])
    # srv: only one signal available -> no pair; local: 3 pairs x 3 conditions
    assert set(out["model"]) == {"local"}
    assert len(out) == 3 * 3
    pair = out[(out["signal_a"] == "prob_chosen") & (out["signal_b"] == "prob_margin")]
    assert (pair["aurc_diff"] > 0).all()
    assert (pair["aurc_diff_lo"] > 0).all()  # noise gate is significantly worse
    assert (pair["aurc_diff"] == pair["aurc_a"] - pair["aurc_b"]).all()
    # Same answer (greedy) for both: AURC and E-AURC differences coincide.
    assert np.allclose(pair["aurc_diff"], pair["e_aurc_diff"])
    # (Nearly) every replicate favours the oracle: p near the rule's floor 2/(B+1), never 0.
    assert pair["aurc_diff_p"].min() == pytest.approx(2 / 301)
    assert (pair["aurc_diff_p"] < 0.05).all()


def test_signal_contrast_p_values_are_adjusted_per_risk_kind():
    out = gate_signal_contrasts(_make_tidy(), B=100, seed=3, risks=["any_error", "high_risk"])
    columns = list(out.columns)
    for name in ("aurc_diff", "e_aurc_diff"):
        at = columns.index(f"{name}_p")
        assert columns[at + 1 : at + 3] == [f"{name}_p_holm", f"{name}_p_bh"]
        for _, family in out.groupby("risk_kind"):
            for suffix, method in (("holm", "holm"), ("bh", "fdr_bh")):
                expected = multipletests(family[f"{name}_p"], method=method)[1]
                np.testing.assert_allclose(family[f"{name}_p_{suffix}"], expected)


def test_condition_contrasts_gate_closes_gap():
    n = 200
    qids = [f"q{i:03d}" for i in range(n)]
    rows = []
    for cond in ("standard_rag", "clean_evidence"):
        for i, q in enumerate(qids):
            # standard_rag: 20% high-risk errors, all on the least confident questions;
            # clean_evidence: 2% errors spread evenly in confidence.
            if cond == "standard_rag":
                hr, conf = int(i < 40), (0.1 if i < 40 else 0.9) + i * 1e-4
            else:
                hr, conf = int(i % 50 == 0), 0.5 + i * 1e-4
            rows.append(
                {
                    "model": "m",
                    "condition": cond,
                    "question_id": q,
                    "greedy_letter": "B" if hr else "A",
                    "greedy_correct": 1 - hr,
                    "greedy_high_risk": hr,
                    "greedy_unsafe": 0,
                    "prob_chosen": conf,
                }
            )
    tidy = pd.DataFrame(rows)
    out = gate_condition_contrasts(
        tidy, coverage=0.8, B=200, seed=42, signals=["prob_chosen"], risks=["high_risk"]
    )
    assert len(out) == 1
    row = out.iloc[0]
    assert row["gap_ungated"] == pytest.approx(0.20 - 0.02)
    # At 80% coverage standard_rag defers all its 40 errors; clean_evidence answers the
    # 160 most confident of its questions (i = 40..199), holding 3 errors (i = 50, 100, 150).
    assert row["risk_a_at_coverage"] == 0.0
    assert row["risk_b_at_coverage"] == pytest.approx(3 / 160)
    assert row["gap_at_coverage"] == pytest.approx(-3 / 160)
    assert row["gap_change"] == pytest.approx(-3 / 160 - 0.18)
    assert row["gap_change_hi"] < 0
    assert row["gap_change_p"] < 0.05
    # One contrast per (risk kind, condition pair) here: a family of one is not adjusted.
    for name in ("gap_ungated", "gap_at_coverage", "gap_change", "aurc_gap"):
        assert 2 / 201 <= row[f"{name}_p"] <= 1
        assert row[f"{name}_p_holm"] == row[f"{name}_p_bh"] == row[f"{name}_p"]
    assert row["gap_ungated_lo"] <= row["gap_ungated"] <= row["gap_ungated_hi"]
