"""The data contract: mapped columns load; every malformed variant names row and column."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import study_row, write_csv

from safescale.data.benchmark import ColumnMapping, load_benchmark, read_canonical, write_canonical
from safescale.errors import InputError


def messages(exc: InputError) -> list[str]:
    return [str(p) for p in exc.problems]


def test_study_layout_loads(tmp_path):
    path = write_csv(
        tmp_path / "b.csv", [study_row("q1"), study_row("q2", n_options=4, correct="D")]
    )
    qs = load_benchmark(path)
    assert [q.question_id for q in qs] == ["q1", "q2"]
    assert qs[0].letters == ("A", "B", "C", "D", "E") and qs[1].letters == ("A", "B", "C", "D")
    assert qs[1].correct == "D"
    assert qs[0].labels["A"].high_risk == 1 and qs[0].labels["B"].high_risk == 0
    assert qs[0].evidence_clean == "clean fact"


def test_renamed_columns_load_through_mapping(tmp_path):
    row = study_row("q1")
    renamed = {}
    for k, v in row.items():
        k = k.replace("question_text", "stem").replace("correct_answer", "key")
        k = k.replace("option_", "choice_").replace("_high_risk", "_danger")
        renamed[k] = v
    path = write_csv(tmp_path / "r.csv", [renamed])
    mapping = ColumnMapping.from_config(
        {
            "question": "stem",
            "correct": "key",
            "option": "choice_{letter}",
            "label": "choice_{i}_{kind}",
            "label_names": {"high_risk": "danger"},
        }
    )
    (q,) = load_benchmark(path, mapping)
    assert q.question == "Question q1?" and q.options["C"] == "option text C"
    assert q.labels["A"].high_risk == 1


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_other_formats(tmp_path, fmt):
    rows = [study_row("q1"), study_row("q2")]
    path = tmp_path / f"b.{fmt}"
    if fmt == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows))
    else:
        pd.DataFrame(rows).to_parquet(path)
    assert len(load_benchmark(path)) == 2


def test_canonical_roundtrip(tmp_path):
    qs = load_benchmark(write_csv(tmp_path / "b.csv", [study_row("q1")]))
    write_canonical(qs, tmp_path / "c.jsonl")
    assert read_canonical(tmp_path / "c.jsonl") == qs


def fails(tmp_path, rows, **kwargs) -> list[str]:
    path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(InputError) as info:
        load_benchmark(path, **kwargs)
    return messages(info.value)


def test_missing_column(tmp_path):
    rows = [{k: v for k, v in study_row("q1").items() if k != "correct_answer"}]
    (msg,) = fails(tmp_path, rows)
    assert "column 'correct_answer'" in msg and "missing" in msg and "bad.csv" in msg


def test_duplicate_ids(tmp_path):
    msgs = fails(tmp_path, [study_row("q1"), study_row("q1")])
    assert msgs == [msgs[0]] and "row 2 (q1)" in msgs[0] and "first seen in row 1" in msgs[0]


def test_too_few_options(tmp_path):
    (msg,) = fails(tmp_path, [study_row("q1", n_options=1, correct="A")])
    assert "row 1 (q1)" in msg and "expected 2 to 5 options, found 1" in msg


def test_gap_in_letters(tmp_path):
    (msg,) = fails(tmp_path, [study_row("q1", option_C="")])
    assert "column 'option_C'" in msg and "gap in option letters" in msg


def test_correct_letter_not_among_options(tmp_path):
    (msg,) = fails(tmp_path, [study_row("q1", n_options=4, correct="E")])
    assert "column 'correct_answer'" in msg and "(A-D)" in msg and "'E'" in msg


def test_label_not_binary(tmp_path):
    (msg,) = fails(tmp_path, [study_row("q1", option_2_unsafe="maybe")])
    assert "row 1 (q1), column 'option_2_unsafe'" in msg and "0/1" in msg and "'maybe'" in msg


def test_label_on_missing_option(tmp_path):
    (msg,) = fails(tmp_path, [study_row("q1", n_options=4, option_5_unsafe="1")])
    assert "column 'option_5_unsafe'" in msg and "option E is empty" in msg


def test_empty_evidence_when_condition_needs_it(tmp_path):
    rows = [study_row("q1"), study_row("q2", evidence_conflict="")]
    (msg,) = fails(tmp_path, rows, required_evidence=["evidence_conflict"])
    assert "row 2 (q2), column 'evidence_conflict'" in msg
    # Not needed by any configured condition: loads fine.
    assert len(load_benchmark(tmp_path / "bad.csv")) == 2


def test_unmapped_evidence_is_not_required(tmp_path):
    rows = [{k: v for k, v in study_row("q1").items() if k != "evidence_conflict"}]
    mapping = ColumnMapping(evidence_conflict=None)
    path = write_csv(tmp_path / "b.csv", rows)
    (q,) = load_benchmark(path, mapping, required_evidence=["evidence_conflict"])
    assert q.evidence_conflict is None


def test_non_utf8(tmp_path):
    path = write_csv(tmp_path / "bad.csv", [study_row("q1")])
    path.write_bytes(path.read_bytes().replace(b"Question q1?", b"Question \xff?"))
    with pytest.raises(InputError) as info:
        load_benchmark(path)
    (msg,) = messages(info.value)
    assert "line 2" in msg and "UTF-8" in msg and "0xff" in msg


def test_all_problems_reported_at_once(tmp_path):
    rows = [study_row("q1", correct="Z"), study_row("q2", option_1_unsafe="2"), study_row("q1")]
    msgs = fails(tmp_path, rows)
    assert len(msgs) == 3
    assert any("row 1" in m for m in msgs) and any("row 2" in m for m in msgs)
    assert any("row 3" in m and "duplicate" in m for m in msgs)
