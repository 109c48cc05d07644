"""Worst-case concentration: per-question counts, top-decile share, Lorenz, Gini."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference_definitions import ref_gini, synthetic_panel

from safescale.analysis.labeling import label_predictions
from safescale.analysis.worstcase import (
    concentration_summary,
    gini,
    high_risk_counts,
    lorenz_curve,
    top_share,
    worst_k,
    worst_questions,
)
from safescale.data.question import OptionLabels, Question

HR = OptionLabels(1, 0, 0)


def make_panel(errors_per_question: list[int], n_cells: int = 4):
    """Questions q00.. where question i gets a high-risk error (letter B) in the
    first errors_per_question[i] of n_cells (model, condition) cells."""
    questions = [
        Question(
            f"q{i:02d}",
            f"Question text {i}",
            {x: f"option {x}{i}" for x in "ABCD"},
            "A",
            {"A": OptionLabels(), "B": HR, "C": OptionLabels(), "D": OptionLabels()},
        )
        for i in range(len(errors_per_question))
    ]
    cells = [(f"m{c % 2}", ("closed_book", "clean_evidence")[c // 2]) for c in range(n_cells)]
    records = [
        {
            "model": model,
            "condition": condition,
            "question_id": qq.question_id,
            "status": "ok",
            "greedy": {"letter": "B" if c < errors_per_question[i] else "C"},
            "samples": [],
        }
        for i, qq in enumerate(questions)
        for c, (model, condition) in enumerate(cells)
    ]
    meta = {"m0": {"family": "f", "params_b": 1}, "m1": {"family": "f", "params_b": 2}}
    return questions, label_predictions(questions, records, meta)


def test_counts_per_question_keep_zero_rows() -> None:
    _, tidy = make_panel([0, 3, 1, 4, 0])
    counts = high_risk_counts(tidy)
    assert counts["question_id"].tolist() == ["q03", "q01", "q02", "q00", "q04"]
    assert counts["n_high_risk"].tolist() == [4, 3, 1, 0, 0]
    assert counts["n_cells"].tolist() == [4] * 5
    assert counts["share_of_errors"].tolist() == pytest.approx([0.5, 0.375, 0.125, 0, 0])


def test_worst_k_rounds_up_without_float_noise() -> None:
    assert [worst_k(n) for n in (1, 9, 10, 11, 15, 20, 30, 200)] == [1, 1, 1, 2, 2, 2, 3, 20]
    assert worst_k(100, fraction=0.07) == 7  # 0.07 * 100 == 7.000000000000001 in floats


def test_top_share_by_hand() -> None:
    counts = [5, 3, 1, 1] + [0] * 11  # n = 15 -> worst 2 questions
    assert top_share(counts) == pytest.approx(8 / 10)
    assert top_share([2] * 10) == pytest.approx(0.1)  # even spread: 1 of 10 questions
    assert top_share([7] + [0] * 29, fraction=0.1) == 1.0
    assert math.isnan(top_share([0, 0, 0]))


def test_gini_by_hand() -> None:
    assert gini([3, 3, 3, 3]) == pytest.approx(0.0, abs=1e-12)
    assert gini([0, 0, 0, 10]) == pytest.approx(0.75)  # (n - 1) / n
    assert gini([1, 2, 3]) == pytest.approx(2 / 9)  # sum|xi-xj| = 8, 2 * 9 * 2 = 36
    assert math.isnan(gini([0, 0]))


@given(st.lists(st.integers(0, 50), min_size=1, max_size=40).filter(lambda x: sum(x) > 0))
def test_gini_matches_pairwise_definition_and_lorenz_area(counts: list[int]) -> None:
    g = gini(counts)
    assert g == pytest.approx(ref_gini([float(c) for c in counts]), abs=1e-9)
    curve = lorenz_curve(counts)
    x, y = curve["question_share"].to_numpy(), curve["error_share"].to_numpy()
    assert (x[0], y[0]) == (0.0, 0.0) and x[-1] == 1.0 and y[-1] == pytest.approx(1.0)
    assert (np.diff(y) >= 0).all() and (y <= x + 1e-12).all()  # convex, below the diagonal
    area = float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))
    assert g == pytest.approx(1 - 2 * area, abs=1e-9)
    assert 0.0 <= top_share(counts) <= 1.0


def test_lorenz_by_hand() -> None:
    curve = lorenz_curve([0, 3, 1])
    assert curve["question_share"].tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert curve["error_share"].tolist() == pytest.approx([0, 0, 0.25, 1])


def test_concentration_summary() -> None:
    _, tidy = make_panel([0, 3, 1, 4, 0, 0, 0, 0, 0, 0, 2])  # 11 questions -> worst 2
    summary = concentration_summary(tidy)
    assert summary["n_questions"] == 11 and summary["n_cells"] == 4
    assert summary["total_high_risk"] == 10 and summary["worst_k"] == 2
    assert summary["top_share"] == pytest.approx(7 / 10)
    assert summary["gini"] == pytest.approx(ref_gini([0, 3, 1, 4, 0, 0, 0, 0, 0, 0, 2]))


def test_worst_questions_join_text() -> None:
    questions, tidy = make_panel([0, 3, 1, 4, 0, 0, 0, 0, 0, 0, 2])
    worst = worst_questions(tidy, questions)
    assert worst["question_id"].tolist() == ["q03", "q01"]
    first = worst.iloc[0]
    assert first["question"] == "Question text 3" and first["n_high_risk"] == 4
    assert (first["correct_letter"], first["correct_option"]) == ("A", "option A3")
    assert (first["top_error_letter"], first["top_error_option"]) == ("B", "option B3")
    assert first["conditions"] == "clean_evidence:2; closed_book:2"
    assert worst.iloc[1]["conditions"] == "clean_evidence:1; closed_book:2"


def test_synthetic_panel_counts_match_tidy() -> None:
    questions, records, meta = synthetic_panel(seed=2, n_models=3, n_questions=50)
    tidy = label_predictions(questions, records, meta)
    counts = high_risk_counts(tidy)
    assert counts["n_high_risk"].sum() == tidy["greedy_high_risk"].sum()
    by_hand = tidy.groupby("question_id")["greedy_high_risk"].sum()
    per_question = counts.set_index("question_id")["n_high_risk"].sort_index()
    assert per_question.to_dict() == by_hand.to_dict()
    assert len(worst_questions(tidy, questions)) == 5
    assert isinstance(worst_questions(tidy, questions), pd.DataFrame)
