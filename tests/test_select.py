"""The run's slice: limit, seeded shuffle and proportional stratification."""

from collections import Counter

import pytest

from safescale.data.benchmark import select, select_configured
from safescale.data.check import check_mapping
from safescale.data.question import OptionLabels, Question
from safescale.errors import InputError


def _questions(counts: dict[str, int]) -> list[Question]:
    out = []
    for stratum, n in counts.items():
        for i in range(n):
            out.append(
                Question(
                    question_id=f"{stratum}-{i}",
                    question="q?",
                    options={"A": "a", "B": "b", "C": "c", "D": "d"},
                    correct="A",
                    labels={k: OptionLabels() for k in "ABCD"},
                    meta={"subspecialty": stratum},
                )
            )
    return out


def test_stratified_quota_is_proportional_with_largest_remainders():
    qs = _questions({"chest": 11, "neuro": 11, "breast": 7, "paeds": 1})  # 30 questions
    chosen = select(qs, limit=15, shuffle=True, seed=3, stratify_by="subspecialty")
    counts = Counter(q.meta["subspecialty"] for q in chosen)
    # exact shares 5.5, 5.5, 3.5, 0.5: floors 5, 5, 3, 0 then one each to the largest remainders
    assert sum(counts.values()) == 15
    assert counts["chest"] in (5, 6) and counts["neuro"] in (5, 6) and counts["breast"] in (3, 4)
    assert all(
        abs(counts[k] - 15 * n / 30) < 1
        for k, n in {"chest": 11, "neuro": 11, "breast": 7, "paeds": 1}.items()
    )


def test_stratified_slice_is_seeded_and_keeps_shuffled_order():
    qs = _questions({"a": 20, "b": 10})
    one = select(qs, limit=9, shuffle=True, seed=1, stratify_by="subspecialty")
    two = select(list(qs), limit=9, shuffle=True, seed=1, stratify_by="subspecialty")
    assert [q.question_id for q in one] == [q.question_id for q in two]
    shuffled = select(qs, limit=None, shuffle=True, seed=1)
    positions = [shuffled.index(q) for q in one]
    assert positions == sorted(positions)
    assert Counter(q.meta["subspecialty"] for q in one) == {"a": 6, "b": 3}
    other_seed = select(qs, limit=9, shuffle=True, seed=2, stratify_by="subspecialty")
    assert {q.question_id for q in other_seed} != {q.question_id for q in one}


def test_plain_limit_and_no_limit_unchanged():
    qs = _questions({"a": 5, "b": 5})
    assert [q.question_id for q in select(qs, limit=3, shuffle=False, seed=0)] == [
        "a-0",
        "a-1",
        "a-2",
    ]
    assert len(select(qs, limit=None, shuffle=False, seed=0, stratify_by="subspecialty")) == 10
    assert len(select(qs, limit=50, shuffle=True, seed=0, stratify_by="subspecialty")) == 10


def test_unknown_stratum_column_is_a_clear_error():
    qs = _questions({"a": 5, "b": 5})
    with pytest.raises(InputError, match="stratify_by: .site. is not a meta column"):
        select(qs, limit=3, shuffle=False, seed=0, stratify_by="site")
    with pytest.raises(InputError, match="not among benchmark.columns.meta"):
        check_mapping({"columns": {"meta": ["subspecialty"]}, "stratify_by": "site"})


def test_select_configured_reads_the_config():
    qs = _questions({"a": 8, "b": 4})
    config = {"seed": 5, "benchmark": {"limit": 6, "shuffle": True, "stratify_by": "subspecialty"}}
    chosen = select_configured(qs, config)
    assert Counter(q.meta["subspecialty"] for q in chosen) == {"a": 4, "b": 2}
