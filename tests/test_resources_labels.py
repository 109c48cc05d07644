"""The two-pass labelling tools (tools/label_agreement.py) and their shipped files."""

from __future__ import annotations

import copy
import csv
import importlib.util

import pytest
from conftest import ROOT

LABELS = ROOT / "resources" / "src" / "labels"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location(
        "label_agreement", ROOT / "tools" / "label_agreement.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench(tool):
    return tool.read_benchmark()


def _shipped_labels(bench) -> dict[tuple[str, str], dict[str, int]]:
    out = {}
    for q in bench:
        for i, letter in enumerate("ABCDE", start=1):
            text = q[f"option_{letter}"].strip()
            if text and letter != q["correct_answer"]:
                out[(q["question_id"], text)] = {
                    k: int(q[f"option_{i}_{k}"]) for k in ("high_risk", "unsafe", "contradicts")
                }
    return out


def _write_pass(path, rows, labels):
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for r in rows:
            writer.writerow(r | labels[(r["question_id"], r["option_text"])])


def test_template_and_instructions_are_current(tool, bench, tmp_path):
    tool.write_template(bench, tmp_path)
    for name in ("template.csv", "REVIEWER_INSTRUCTIONS.md"):
        assert (tmp_path / name).read_bytes() == (LABELS / name).read_bytes(), name


def test_template_lists_every_distractor_once_without_labels(tool, bench):
    with (LABELS / "template.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == tool.COLUMNS
    keys = [(r["question_id"], r["option_text"]) for r in rows]
    assert len(keys) == len(set(keys)) == len(_shipped_labels(bench))
    assert set(keys) == set(_shipped_labels(bench))
    assert all(r[k] == "" for r in rows for k in ("high_risk", "unsafe", "contradicts"))


def test_instructions_hold_rubric_and_items_but_no_labels(tool, bench):
    text = (LABELS / "REVIEWER_INSTRUCTIONS.md").read_text(encoding="utf-8")
    assert tool.RUBRIC in text
    for q in bench:
        assert f"### {q['question_id']} " in text
        assert q["evidence_clean"] in text
        assert q["evidence_conflict"] not in text
    assert "option_1_high_risk" not in text and "conflict_supports" not in text


def test_cohen_kappa(tool):
    assert tool.cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)
    assert tool.cohen_kappa([1, 0, 1, 0], [1, 0, 1, 0]) == pytest.approx(1.0)
    assert tool.cohen_kappa([1, 0], [0, 1]) == pytest.approx(-1.0)
    assert tool.cohen_kappa([0, 0, 0], [0, 0, 0]) is None  # chance agreement 1: undefined


def test_compare_reports_kappa_and_every_disagreement(tool, bench, tmp_path):
    rows = tool.distractor_rows(bench)
    labels_a = _shipped_labels(bench)
    labels_b = copy.deepcopy(labels_a)
    flipped = [
        (rows[0]["question_id"], rows[0]["option_text"]),
        (rows[5]["question_id"], rows[5]["option_text"]),
    ]
    labels_b[flipped[0]]["unsafe"] ^= 1
    labels_b[flipped[1]]["high_risk"] ^= 1
    _write_pass(tmp_path / "pass_a.csv", rows, labels_a)
    _write_pass(tmp_path / "pass_b.csv", rows, labels_b)
    log = tmp_path / "log.md"
    args = [
        "compare",
        str(tmp_path / "pass_a.csv"),
        str(tmp_path / "pass_b.csv"),
        "--log",
        str(log),
    ]
    assert tool.main(args) == 0
    text = log.read_text(encoding="utf-8")
    assert "## Disagreements (2)" in text
    assert f"| {flipped[0][0]} | {flipped[0][1]} | unsafe |" in text
    assert f"| {flipped[1][0]} | {flipped[1][1]} | high_risk |" in text
    assert "| contradicts | 1.000 | 1.000 |" in text


def test_incomplete_pass_is_refused(tool, bench, tmp_path):
    rows = tool.distractor_rows(bench)
    labels = _shipped_labels(bench)
    _write_pass(tmp_path / "pass_a.csv", rows[1:], labels)
    with pytest.raises(tool.PassError, match="missing"):
        tool.read_pass(tmp_path / "pass_a.csv", rows)


def test_apply_writes_resolved_labels_into_the_sources(tool, bench, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for f in (ROOT / "resources" / "src").glob("questions_*.jsonl"):
        (src / f.name).write_bytes(f.read_bytes())
    labels = _shipped_labels(bench)
    assert tool.apply(labels, src) == 0  # the shipped labels round-trip unchanged
    for f in src.glob("*.jsonl"):
        assert f.read_bytes() == (ROOT / "resources" / "src" / f.name).read_bytes()
    key = next(iter(labels))
    labels[key] = {k: 1 - v for k, v in labels[key].items()}
    assert tool.apply(labels, src) == 1
