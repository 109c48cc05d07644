"""LLM-judge re-parse: only NULL outputs are judged, every change is marked and counted."""

from __future__ import annotations

import json

from safescale.data.question import OptionLabels, Question
from safescale.inference.judge import judge_messages, judge_record, judge_records

Q = Question(
    "q1",
    "Which sign shows free gas on both sides of the bowel wall?",
    {"A": "Rigler sign", "B": "Football sign", "C": "Cupola sign"},
    "A",
    {k: OptionLabels() for k in "ABC"},
)


def record(greedy_raw, greedy_letter, samples):
    return {
        "question_id": "q1",
        "status": "ok",
        "greedy": {"raw": greedy_raw, "letter": greedy_letter, "n_tokens": 3},
        "samples": [{"raw": r, "letter": x, "n_tokens": 2} for r, x in samples],
    }


def test_only_null_outputs_are_judged_and_marked():
    calls = []

    def ask(messages):
        calls.append(messages[1]["content"])
        return "B" if "football one" in messages[1]["content"] else "NONE"

    rec = record(
        "It is the football one",
        None,
        [("A", "A"), ("It is the football one", None), ("no idea", None), ("", None)],
    )
    new, judged, recovered = judge_record(rec, Q, ask)
    assert (judged, recovered) == (3, 2)  # greedy + 2 samples judged; the empty one is not
    assert len(calls) == 2  # identical raw texts share one judge call
    assert new["greedy"]["letter"] == "B" and new["greedy"]["letter_source"] == "judge"
    assert new["samples"][0]["letter_source"] == "rule"
    assert new["samples"][2]["letter"] is None and new["samples"][2]["judge_raw"] == "NONE"
    assert rec["greedy"]["letter"] is None  # the input record is not modified


def test_error_records_pass_through():
    rec = {"question_id": "q1", "status": "error", "greedy": None, "samples": []}
    assert judge_records([rec], {"q1": Q}, lambda m: "A") == (
        [rec],
        {"outputs_judged": 0, "outputs_recovered": 0},
    )


def test_judge_prompt_shows_question_options_and_answer():
    text = json.dumps(judge_messages(Q, "maybe the cupola"))
    assert "Rigler sign" in text and "maybe the cupola" in text and "NONE" in text


def test_real_judge_model(smollm2_path, tmp_path):
    """The stage end to end with a real small judge model (its reply may be NULL; counted)."""
    from conftest import ROOT

    from safescale.config import load_config
    from safescale.data.benchmark import write_canonical
    from safescale.data.models import sha256_file
    from safescale.jsonio import read_jsonl, write_json, write_jsonl
    from safescale.stages.inference import judge_predictions

    write_canonical([Q], tmp_path / "b.jsonl")
    write_jsonl(
        [record("The Rigler sign, where gas outlines", None, [("A", "A")])], tmp_path / "p.jsonl"
    )
    write_json(
        {
            "name": "smollm2-135m",
            "path": str(smollm2_path),
            "n_ctx": 8192,
            "prompt_style": "chat",
            # what the fetch step records, checked again when the judge loads the model
            "size_bytes": smollm2_path.stat().st_size,
            "sha256": sha256_file(smollm2_path),
        },
        tmp_path / "judge.json",
    )
    config = load_config(ROOT / ".test/config/config.yaml")
    judge_predictions(
        benchmark=str(tmp_path / "b.jsonl"),
        predictions=str(tmp_path / "p.jsonl"),
        judge=str(tmp_path / "judge.json"),
        config=config,
        threads=1,
        out_predictions=str(tmp_path / "out.jsonl"),
        out_summary=str(tmp_path / "out.json"),
    )
    (out,) = read_jsonl(tmp_path / "out.jsonl")
    summary = json.loads((tmp_path / "out.json").read_text())
    assert summary["judge"] == "smollm2-135m" and summary["outputs_judged"] == 1
    assert "judge_raw" in out["greedy"] and out["samples"][0]["letter_source"] == "rule"
