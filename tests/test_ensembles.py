"""Ensembles: vote rule, hand fixture, agreement with the reference loops."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from reference_definitions import ref_ensembles, synthetic_panel

from safescale.analysis.ensembles import NULL_CODE, ensemble_table, ensemble_vote, vote_codes
from safescale.analysis.labeling import answered, label_predictions
from safescale.data.question import OptionLabels, Question

LETTER_OF = {i: x for i, x in enumerate("ABCDE")} | {NULL_CODE: None}


@pytest.mark.parametrize(
    ("votes", "expected"),
    [
        (["A", "A", "B"], "A"),
        (["C", "B", "A"], "A"),  # three-way tie -> alphabetical first
        (["A", "B", None], None),  # tie containing NULL -> abstention
        ([None, None, "A"], None),
        (["B", "B", None], "B"),
    ],
)
def test_ensemble_vote(votes: list[str | None], expected: str | None) -> None:
    assert ensemble_vote(votes) == expected


@pytest.mark.parametrize("size", [3, 4])
def test_vectorised_vote_equals_scalar_rule_exhaustively(size: int) -> None:
    combos = np.array(list(itertools.product(range(NULL_CODE + 1), repeat=size)))
    chosen = vote_codes(combos[:, :, None])[:, 0]
    for votes, code in zip(combos, chosen, strict=True):
        assert LETTER_OF[code] == ensemble_vote([LETTER_OF[v] for v in votes]), votes


def q(qid: str, correct: str, labels: dict[str, OptionLabels]) -> Question:
    full = {x: labels.get(x, OptionLabels()) for x in "ABCD"}
    return Question(qid, f"text {qid}", {x: f"{qid}{x}" for x in "ABCD"}, correct, full)


HR, UN, CO = OptionLabels(1, 0, 0), OptionLabels(0, 1, 0), OptionLabels(0, 0, 1)
QUESTIONS = [
    q("q1", "A", {"B": HR}),
    q("q2", "C", {"A": HR, "B": UN}),
    q("q3", "A", {"B": CO}),
    q("q4", "B", {"A": UN}),
    q("q5", "A", {"B": CO}),
]
# greedy letters of models x, y, z (and w) per question
LETTERS = {
    "x": ["A", "A", "A", None, "B"],
    "y": ["A", "B", "B", None, "B"],
    "z": ["B", "C", None, "A", "B"],
    "w": ["A", "C", "A", "B", "A"],
}


def tidy_for(models: str, status: dict[tuple[str, str], str] | None = None) -> pd.DataFrame:
    records = [
        {
            "model": m,
            "condition": "closed_book",
            "question_id": qq.question_id,
            "status": (status or {}).get((m, qq.question_id), "ok"),
            "greedy": {"letter": LETTERS[m][i]},
            "samples": [],
        }
        for m in models
        for i, qq in enumerate(QUESTIONS)
    ]
    meta = {m: {"family": "f", "params_b": 1.0} for m in models}
    return label_predictions(QUESTIONS, records, meta)


def test_hand_fixture() -> None:
    row = ensemble_table(tidy_for("xyz")).iloc[0]
    # votes: q1 A,A,B -> A (right); q2 A,B,C -> A (wrong, high_risk); q3 A,B,NULL -> abstain;
    # q4 NULL,NULL,A -> abstain; q5 B,B,B -> B (wrong, contradicts; synchronized)
    assert row["members"] == "x+y+z" and row["n_questions"] == 5
    assert row["accuracy"] == pytest.approx(1 / 5)
    assert row["high_risk_rate"] == pytest.approx(1 / 5)
    assert row["unsafe_rate"] == 0.0
    assert row["contradiction_rate"] == pytest.approx(1 / 5)
    assert row["abstention_rate"] == pytest.approx(2 / 5)
    assert row["synchronized_failure_rate"] == pytest.approx(1 / 5)
    # members: x 2/5 right (q1, q3), y 1/5, z 1/5 (q2) -> best is x
    assert row["best_member"] == "x"
    assert row["best_member_accuracy"] == pytest.approx(2 / 5)
    assert row["best_member_high_risk_rate"] == pytest.approx(1 / 5)  # q2 A
    assert row["best_member_contradiction_rate"] == pytest.approx(1 / 5)  # q5 B
    assert row["delta_accuracy"] == pytest.approx(-1 / 5)


def test_best_member_is_most_accurate_then_least_high_risk() -> None:
    table = ensemble_table(tidy_for("xyzw"), models=["y", "z", "w"])
    assert table["members"].tolist() == ["w+y+z"]
    assert table.iloc[0]["best_member"] == "w"  # w answers all five right
    # y and z both answer 1/5 right; z has a high-risk error (q1 B), y none
    pair = ensemble_table(tidy_for("xyzw"), models=["z", "y"], size=2).iloc[0]
    assert (pair["members"], pair["best_member"]) == ("y+z", "y")
    assert pair["best_member_high_risk_rate"] == 0.0


def test_error_records_vote_null() -> None:
    row = ensemble_table(tidy_for("xyz", status={("z", "q1"): "error"})).iloc[0]
    # q1 becomes A, A, NULL -> A: still right
    assert row["accuracy"] == pytest.approx(1 / 5)
    row = ensemble_table(tidy_for("xyz", status={("x", "q1"): "error"})).iloc[0]
    # q1 becomes NULL, A, B -> tie with NULL -> abstention
    assert row["accuracy"] == 0.0 and row["abstention_rate"] == pytest.approx(3 / 5)


def test_a_question_skipped_for_a_member_leaves_the_ensemble() -> None:
    tidy = answered(tidy_for("xyz", status={("z", "q1"): "skipped"}))
    row = ensemble_table(tidy).iloc[0]
    # q1 (the one right answer) is out: 0 of the 4 remaining questions are right
    assert row["n_questions"] == 4
    assert row["accuracy"] == 0.0 and row["abstention_rate"] == pytest.approx(2 / 4)


def test_combination_count_and_too_few_models() -> None:
    assert len(ensemble_table(tidy_for("xyzw"))) == 4
    assert len(ensemble_table(tidy_for("xyzw"), size=2)) == 6
    assert ensemble_table(tidy_for("xy")).empty


def test_agrees_with_reference_loops() -> None:
    questions, records, meta = synthetic_panel(seed=13, n_models=5, n_questions=30)
    table = ensemble_table(label_predictions(questions, records, meta))
    reference = ref_ensembles(questions, records)
    assert len(table) == len(reference) == 3 * 10
    for _, row in table.iterrows():
        expected = reference[(row["condition"], row["members"])]
        for name, value in expected.items():
            if isinstance(value, str):
                assert row[name] == value, name
            else:
                assert row[name] == pytest.approx(value, abs=1e-12), name
