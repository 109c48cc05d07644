"""The data contract: mapped columns load; every malformed variant names row and column."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import study_row, write_csv

from safescale.conditions import LABEL_KINDS
from safescale.data.benchmark import (
    CellRules,
    ColumnMapping,
    load_benchmark,
    read_canonical,
    write_canonical,
)
from safescale.data.question import OptionLabels
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
    assert "row 1 (q1), column 'option_B'" in msg and "expected 4 to 5 options, found 1" in msg


def test_two_option_row_with_zero_labels_is_refused(tmp_path):
    row = study_row("q1", n_options=2, correct="A")
    row.update({f"option_{i}_{k}": "0" for i in (3, 4, 5) for k in LABEL_KINDS})
    (msg,) = fails(tmp_path, [row])
    assert "row 1 (q1), column 'option_C'" in msg and "found 2" in msg
    assert "benchmark.options" in msg


def test_option_range_is_configurable(tmp_path):
    rows = [study_row("q1", n_options=2, correct="A"), study_row("q2", n_options=5)]
    path = write_csv(tmp_path / "b.csv", rows)
    assert len(load_benchmark(path, rules=CellRules(option_range=(2, 5)))) == 2
    with pytest.raises(InputError) as info:
        load_benchmark(path, rules=CellRules(option_range=(2, 4)))
    (msg,) = messages(info.value)
    assert "row 2 (q2), column 'option_E'" in msg and "expected 2 to 4 options, found 5" in msg
    with pytest.raises(InputError, match="benchmark.options"):
        CellRules(option_range=(5, 4))


def test_gap_in_letters(tmp_path):
    (msg,) = fails(tmp_path, [study_row("q1", option_C="")])
    assert "column 'option_C'" in msg and "gap in option letters" in msg


def test_correct_letter_not_among_options(tmp_path):
    (msg,) = fails(tmp_path, [study_row("q1", n_options=4, correct="E")])
    assert "column 'correct_answer'" in msg and "(A-D)" in msg and "'E'" in msg


def test_label_not_binary(tmp_path):
    (msg,) = fails(tmp_path, [study_row("q1", option_2_unsafe="maybe")])
    assert "row 1 (q1), column 'option_2_unsafe'" in msg and "0/1" in msg and "'maybe'" in msg


@pytest.mark.parametrize("spelling", ["yes", "no", "true", "False", "Y"])
def test_words_are_not_labels_unless_mapped(tmp_path, spelling):
    (msg,) = fails(tmp_path, [study_row("q1", option_2_unsafe=spelling)])
    assert "row 1 (q1), column 'option_2_unsafe'" in msg and repr(spelling) in msg
    assert "benchmark.label_values" in msg


def test_declared_label_values_map_words(tmp_path):
    row = study_row("q1", option_1_unsafe="Yes", option_2_unsafe="no", option_3_high_risk="1.0")
    path = write_csv(tmp_path / "b.csv", [row])
    rules = CellRules(label_values={"yes": 1, "no": 0})
    (q,) = load_benchmark(path, rules=rules)
    assert (q.labels["A"].unsafe, q.labels["B"].unsafe, q.labels["C"].high_risk) == (1, 0, 1)


def test_label_values_config_is_checked():
    with pytest.raises(InputError) as info:
        CellRules(label_values={True: 1, "ja": 2})
    text = str(info.value)
    assert "quote it" in text and "benchmark.label_values.ja" in text and "0 or 1" in text


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
    assert "row 1, column 'question_text'" in msg and "not valid UTF-8" in msg


def test_all_problems_reported_at_once(tmp_path):
    rows = [study_row("q1", correct="Z"), study_row("q2", option_1_unsafe="2"), study_row("q1")]
    msgs = fails(tmp_path, rows)
    assert len(msgs) == 3
    assert any("row 1" in m for m in msgs) and any("row 2" in m for m in msgs)
    assert any("row 3" in m and "duplicate" in m for m in msgs)


# --- mapping patterns are checked before any file is read -------------------


@pytest.mark.parametrize(
    ("columns", "key", "expected"),
    [
        ({"label": "{letter} High Risk"}, "benchmark.columns.label", "has no {kind}"),
        ({"option": "Option {leter}"}, "benchmark.columns.option", "uses {leter}"),
        ({"label": "{letter}_{knd}"}, "benchmark.columns.label", "uses {knd}"),
        ({"option": "Option"}, "benchmark.columns.option", "neither {letter} nor {i}"),
        ({"label": "{kind}"}, "benchmark.columns.label", "neither {letter} nor {i}"),
        ({"option": "Option {letter"}, "benchmark.columns.option", "malformed"),
        ({"option": "Option {}"}, "benchmark.columns.option", "uses {}"),
        (
            {"label_names": {"unsafe": "high_risk"}},
            "benchmark.columns.label_names.unsafe",
            "also the name of high_risk",
        ),
        ({"correct": "option_A"}, "benchmark.columns.option (A)", "already uses"),
    ],
)
def test_bad_mapping_patterns_name_key_and_pattern(columns, key, expected):
    with pytest.raises(InputError) as info:
        ColumnMapping.from_config(columns)
    text = str(info.value)
    assert f"config key {key}" in text and expected in text, text
    pattern = columns.get("label") or columns.get("option")
    if pattern:
        assert f"'{pattern}'" in text


# --- every problem of every phase at once ------------------------------------


def test_missing_column_does_not_hide_row_problems(tmp_path):
    rows = [study_row("q1", option_2_unsafe="maybe"), study_row("q1")]
    for row in rows:
        del row["evidence_clean"]
    msgs = fails(tmp_path, rows)
    assert any("column 'evidence_clean'" in m and "missing" in m for m in msgs)
    assert any("row 1 (q1), column 'option_2_unsafe'" in m for m in msgs)
    assert any("row 2 (q1)" in m and "duplicate" in m for m in msgs)
    assert len(msgs) == 3, msgs


def test_encoding_error_does_not_hide_other_problems(tmp_path):
    path = write_csv(tmp_path / "bad.csv", [study_row("q1"), study_row("q2", correct="Z")])
    path.write_bytes(path.read_bytes().replace(b"Question q1?", b"Question \xe9?"))
    with pytest.raises(InputError) as info:
        load_benchmark(path)
    msgs = messages(info.value)
    assert any("row 1, column 'question_text'" in m and "UTF-8" in m for m in msgs)
    assert any("row 2 (q2), column 'correct_answer'" in m for m in msgs)


def test_rows_of_the_wrong_length_are_named_once_each(tmp_path):
    path = write_csv(tmp_path / "bad.csv", [study_row(f"q{i}") for i in range(1, 5)])
    lines = path.read_text(encoding="utf-8").splitlines()
    width = len(lines[0].split(","))
    lines[1] = ",".join(lines[1].split(",")[:10])  # short row 1
    lines[3] = lines[3] + ",extra,fields"  # long row 3
    path.write_text("\n".join(lines), encoding="utf-8")
    msgs = fails_at(path)
    assert msgs == [
        f"{path}, row 1: row 1 has 10 fields, the header has {width} "
        "(a missing or extra delimiter, or an unclosed quote above)",
        f"{path}, row 3: row 3 has {width + 2} fields, the header has {width} "
        "(a missing or extra delimiter, or an unclosed quote above)",
    ]


def test_duplicate_header_names(tmp_path):
    path = write_csv(tmp_path / "bad.csv", [study_row("q1")])
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("evidence_clean", "question_text", 1), encoding="utf-8")
    msgs = fails_at(path)
    assert any("column 'question_text'" in m and "twice" in m for m in msgs)


def fails_at(path) -> list[str]:
    with pytest.raises(InputError) as info:
        load_benchmark(path)
    return messages(info.value)


def test_radsafe_style_file_loads_exactly():
    from conftest import ROOT

    mapping = ColumnMapping.from_config(
        {
            "question_id": "ID",
            "question": "Question",
            "correct": "Correct Option",
            "option": "Option {letter}",
            "label": "{letter} {kind}",
            "evidence_clean": "Clean Evidence",
            "evidence_conflict": "Conflict Evidence",
            "label_names": {
                "high_risk": "High Risk",
                "unsafe": "Unsafe",
                "contradicts": "Contradicts",
            },
        }
    )
    path = ROOT / "tests" / "data" / "radsafe_style.csv"
    assert b"\r\n" in path.read_bytes()
    qs = load_benchmark(path, mapping, required_evidence=["evidence_clean", "evidence_conflict"])
    assert [len(q.options) for q in qs] == [5, 4, 5, 4, 5, 5]
    assert qs[0].question.endswith("headache.\nWhich first test?")
    assert qs[1].options["D"] == "7 µmol" and qs[4].question.startswith("Ürün")
    assert qs[0].labels["B"] == OptionLabels(high_risk=1, unsafe=1, contradicts=0)
    assert qs[0].labels["A"] == OptionLabels(high_risk=0, unsafe=0, contradicts=1)
    assert qs[5].labels["E"] == OptionLabels(high_risk=1, unsafe=1, contradicts=0)
