"""The case browser on a small synthetic set of files: which rows, what they show."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from safescale.analysis.cases import case_browser_html, case_table, sc_votes
from safescale.analysis.labeling import label_predictions
from safescale.data.benchmark import write_canonical
from safescale.data.models import largest_model
from safescale.data.question import OptionLabels, Question
from safescale.errors import InputError
from safescale.jsonio import read_jsonl, write_jsonl
from safescale.prompting.templates import completion_prompt, context_in_prompt, messages_for
from safescale.stages.analysis import case_browser

SAFE = OptionLabels(0, 0, 0)
HIGH = OptionLabels(1, 0, 1)
UNSAFE = OptionLabels(0, 1, 0)
CONDITIONS = ("closed_book", "clean_evidence")


def question(i: int) -> Question:
    return Question(
        f"q{i}",
        f"Which study for patient {i} <b>?",
        {"A": "right", "B": "harmful", "C": "unsafe", "D": "plain wrong"},
        "A",
        {"A": SAFE, "B": HIGH, "C": UNSAFE, "D": SAFE},
        evidence_clean=f"Guideline {i}: do A.\nNot B.",
        meta={"subspecialty": "neuro" if i % 2 else "msk"},
    )


QUESTIONS = [question(i) for i in range(4)]
# Greedy letter per (condition, question): B = high-risk, C = unsafe, D = wrong but safe.
ANSWERS = {"closed_book": "BCDA", "clean_evidence": "ABAA"}


def write_run(tmp: Path, model: str = "big") -> dict[str, dict[str, str]]:
    prompts, predictions = {}, {}
    for condition in CONDITIONS:
        prompt_records, prediction_records = [], []
        for q, letter in zip(QUESTIONS, ANSWERS[condition], strict=True):
            context = q.evidence_clean if condition == "clean_evidence" else None
            prompt_records.append(
                {
                    "model": model,
                    "condition": condition,
                    "question_id": q.question_id,
                    "status": "ok",
                    "context_ids": [],
                    "prompt": completion_prompt(q, context),
                }
            )
            prediction_records.append(
                {
                    "model": model,
                    "condition": condition,
                    "question_id": q.question_id,
                    "status": "ok",
                    "greedy": {"raw": f"{letter}. because", "letter": letter, "latency_s": 1.0},
                    "samples": [{"letter": x} for x in letter * 3 + "A" + "-"],
                }
            )
        prompts[condition] = str(tmp / f"prompts_{condition}.jsonl")
        predictions[condition] = str(tmp / f"pred_{condition}.jsonl")
        write_jsonl(prompt_records, prompts[condition])
        write_jsonl(prediction_records, predictions[condition])
    return {"prompts": prompts, "predictions": predictions}


def tidy_of(files: dict[str, dict[str, str]]) -> pd.DataFrame:
    """The real labelling of the prediction files ('-' samples parse as NULL)."""
    records = [r for path in files["predictions"].values() for r in read_jsonl(path)]
    return label_predictions(QUESTIONS, records, {"big": {"family": "f", "params_b": 1.5}})


def test_context_in_prompt_inverts_both_prompt_styles() -> None:
    q = QUESTIONS[1]
    assert context_in_prompt(completion_prompt(q, "  Evidence\n\nin two parts "), q) == (
        "Evidence\n\nin two parts"
    )
    assert context_in_prompt(completion_prompt(q, None), q) is None
    chat = "<|user|>" + messages_for(q, "E")[1]["content"] + "<|end|>"
    assert context_in_prompt(chat, q) == "E"
    with pytest.raises(ValueError, match="q1"):
        context_in_prompt("something else", q)


def test_every_high_risk_and_unsafe_error_with_what_it_saw(tmp_path: Path) -> None:
    files = write_run(tmp_path)
    cases = case_table(tidy=tidy_of(files), questions=QUESTIONS, model="big", **files)
    # closed book: q0 (B, high risk) and q1 (C, unsafe); q2 (D) is wrong but safe.
    # clean evidence: q1 (B, high risk).
    assert list(zip(cases.condition, cases.question_id, strict=True)) == [
        ("closed_book", "q0"),
        ("closed_book", "q1"),
        ("clean_evidence", "q1"),
    ]
    first, second, third = cases.to_dict("records")
    assert (first["chosen_letter"], first["high_risk"], first["unsafe"]) == ("B", 1, 0)
    assert first["contradicts"] == 1 and first["chosen_option"] == "harmful"
    assert (second["chosen_letter"], second["high_risk"], second["unsafe"]) == ("C", 0, 1)
    assert first["evidence"] == "" and third["evidence"] == QUESTIONS[1].evidence_clean
    assert first["greedy_raw"] == "B. because" and first["subspecialty"] == "msk"
    assert first["sc_votes"] == "B 3, A 1, none 1" and first["sc_majority"] == "B"
    assert first["options"].splitlines()[1] == "B. harmful"


def test_stage_writes_csv_and_escaped_html(tmp_path: Path) -> None:
    files = write_run(tmp_path)
    labels = tmp_path / "labels.parquet"
    tidy_of(files).to_parquet(labels, index=False)
    benchmark = tmp_path / "benchmark.jsonl"
    write_canonical(QUESTIONS, benchmark)
    out_csv, out_html = tmp_path / "case_browser.csv", tmp_path / "case_browser.html"
    case_browser(
        labels=str(labels),
        benchmark=str(benchmark),
        model="big",
        out_table=str(out_csv),
        out_html=str(out_html),
        **files,
    )
    assert len(pd.read_csv(out_csv)) == 3
    page = out_html.read_text()
    assert "&lt;b&gt;?" in page and "<b>?" not in page  # question text escaped
    assert "(chosen)" in page and "(correct)" in page and "none (closed book)" in page


def test_a_missing_prompt_record_is_named_by_file(tmp_path: Path) -> None:
    files = write_run(tmp_path)
    tidy = tidy_of(files)
    write_jsonl([], files["prompts"]["clean_evidence"])
    with pytest.raises(
        InputError, match=r"prompts_clean_evidence.jsonl: no record for question q1"
    ):
        case_table(tidy=tidy, questions=QUESTIONS, model="big", **files)


def test_no_errors_gives_an_empty_table_and_page(tmp_path: Path) -> None:
    files = write_run(tmp_path)
    tidy = tidy_of(files)
    tidy[["greedy_high_risk", "greedy_unsafe"]] = 0
    cases = case_table(tidy=tidy, questions=QUESTIONS, model="big", **files)
    assert cases.empty and "no such error" in case_browser_html(cases, "big")


def test_helpers() -> None:
    assert sc_votes("BB-AC") == "B 2, A 1, C 1, none 1" and sc_votes("") == ""
    assert largest_model({"a": 0.5, "b": 1.54, "c": 1.54}) == "b"
