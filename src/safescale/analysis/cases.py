"""Case browser for clinical reviewers: every high-risk and every unsafe greedy error of
one model (the run's largest), with the question, its options, the evidence that
condition showed, the chosen option's labels, the raw greedy output and the
self-consistency votes, so a reviewer can judge each error without opening five files.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from safescale.analysis.labeling import NULL_MARK, answered
from safescale.conditions import ordered_conditions
from safescale.data.question import SUBSPECIALTY, Question
from safescale.errors import InputError, Problem
from safescale.jsonio import read_jsonl
from safescale.prompting.templates import context_in_prompt

CASE_COLUMNS: tuple[str, ...] = (
    "model",
    "condition",
    "question_id",
    "subspecialty",
    "question",
    "options",
    "correct_letter",
    "chosen_letter",
    "chosen_option",
    "high_risk",
    "unsafe",
    "contradicts",
    "greedy_raw",
    "sc_votes",
    "sc_majority",
    "sc_confidence",
    "evidence",
    "context_ids",
)
# How much evidence the HTML shows before the reader opens the full text.
PREVIEW_CHARS = 160


def sc_votes(letters: object) -> str:
    """'B 9, C 5, none 2': the self-consistency ballots by count (ties alphabetical)."""
    if not isinstance(letters, str) or not letters:
        return ""
    counts = Counter("none" if x == NULL_MARK else x for x in letters)
    return ", ".join(f"{k} {n}" for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _records_by_question(
    path: str | Path, model: str, condition: str
) -> tuple[dict[str, dict], list[Problem]]:
    records, problems = {}, []
    for row, record in enumerate(read_jsonl(path), 1):
        qid = record.get("question_id")
        if record.get("model") != model or record.get("condition") != condition:
            problems.append(
                Problem(
                    str(path),
                    f"record is for {record.get('model')}/{record.get('condition')}, "
                    f"expected {model}/{condition}",
                    row,
                    record_id=qid,
                )
            )
        records[str(qid)] = record
    return records, problems


def case_table(
    *,
    tidy: pd.DataFrame,
    questions: Sequence[Question],
    model: str,
    prompts: Mapping[str, str | Path],
    predictions: Mapping[str, str | Path],
) -> pd.DataFrame:
    """One row per greedy answer of `model` that is a high-risk or unsafe error (columns
    `CASE_COLUMNS`), conditions in study order, then question id. `prompts` and
    `predictions` map each condition to its JSONL file; a missing record or a record of
    another cell stops with every problem named by file and row."""
    rows = answered(tidy)
    errors = rows[
        (rows["model"] == model) & ((rows["greedy_high_risk"] == 1) | (rows["greedy_unsafe"] == 1))
    ]
    by_id = {q.question_id: q for q in questions}
    problems: list[Problem] = []
    prompt_records: dict[str, dict[str, dict]] = {}
    outputs: dict[str, dict[str, dict]] = {}
    for condition in ordered_conditions(errors["condition"]):
        for files, store in ((prompts, prompt_records), (predictions, outputs)):
            if condition not in files:
                problems.append(Problem("case browser inputs", f"no file for {condition}"))
                continue
            store[condition], found = _records_by_question(files[condition], model, condition)
            problems += found
    out = []
    order = {c: i for i, c in enumerate(ordered_conditions(errors["condition"]))}
    errors = errors.assign(_order=errors["condition"].map(order))
    for r in errors.sort_values(["_order", "question_id"]).itertuples(index=False):
        qid, condition = str(r.question_id), str(r.condition)
        q = by_id.get(qid)
        prompt = prompt_records.get(condition, {}).get(qid)
        output = outputs.get(condition, {}).get(qid)
        if q is None:
            problems.append(Problem("benchmark", f"labelled question {qid} is not in it"))
        if prompt is None and condition in prompts:
            problems.append(Problem(str(prompts[condition]), f"no record for question {qid}"))
        if output is None and condition in predictions:
            problems.append(Problem(str(predictions[condition]), f"no record for question {qid}"))
        if q is None or prompt is None or output is None:
            continue
        try:
            evidence = context_in_prompt(prompt.get("prompt") or "", q)
        except ValueError as exc:
            problems.append(Problem(str(prompts[condition]), str(exc), record_id=qid))
            continue
        letter = str(r.greedy_letter)
        out.append(
            {
                "model": model,
                "condition": r.condition,
                "question_id": q.question_id,
                "subspecialty": q.meta.get(SUBSPECIALTY),
                "question": q.question,
                "options": "\n".join(f"{k}. {v}" for k, v in q.options.items()),
                "correct_letter": q.correct,
                "chosen_letter": letter,
                "chosen_option": q.options.get(letter, ""),
                "high_risk": int(r.greedy_high_risk),
                "unsafe": int(r.greedy_unsafe),
                "contradicts": int(r.greedy_contradicts),
                "greedy_raw": (output.get("greedy") or {}).get("raw"),
                "sc_votes": sc_votes(r.sc_letters),
                "sc_majority": r.sc_majority,
                "sc_confidence": r.sc_confidence,
                "evidence": evidence or "",
                "context_ids": ";".join(prompt.get("context_ids") or []),
            }
        )
    if problems:
        raise InputError(problems)
    return pd.DataFrame(out, columns=list(CASE_COLUMNS))


def _options_html(row: Mapping[str, object]) -> str:
    lines = []
    for line in str(row["options"]).splitlines():
        letter = line.split(".", 1)[0]
        text = html.escape(line)
        if letter == row["chosen_letter"]:
            text = f"<b>{text}</b> (chosen)"
        if letter == row["correct_letter"]:
            text += " (correct)"
        lines.append(text)
    return "<br>".join(lines)


def _evidence_html(text: object) -> str:
    evidence = str(text or "")
    if not evidence:
        return "<i>none (closed book)</i>"
    if len(evidence) <= PREVIEW_CHARS:
        return html.escape(evidence).replace("\n", "<br>")
    preview = html.escape(evidence[:PREVIEW_CHARS]) + "&hellip;"
    full = html.escape(evidence).replace("\n", "<br>")
    return f"<details><summary>{preview} ({len(evidence)} characters)</summary>{full}</details>"


def case_browser_html(cases: pd.DataFrame, model: str) -> str:
    """A self-contained HTML page of the case table (all text escaped)."""
    head = (
        "condition", "question", "options", "labels of the chosen option", "greedy output",
        "self-consistency votes (confidence)", "evidence shown",
    )  # fmt: skip
    body = []
    for row in cases.to_dict("records"):
        labels = ", ".join(k for k in ("high_risk", "unsafe", "contradicts") if row[k]) or "-"
        confidence = row["sc_confidence"]
        conf = "" if pd.isna(confidence) else f" ({confidence:.2f})"
        cells = (
            html.escape(str(row["condition"])),
            f"<b>{html.escape(str(row['question_id']))}</b><br>{html.escape(str(row['question']))}",
            _options_html(row),
            html.escape(labels),
            f"<code>{html.escape(str(row['greedy_raw'] or ''))}</code>",
            html.escape(str(row["sc_votes"])) + conf,
            _evidence_html(row["evidence"]),
        )
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    title = f"High-risk and unsafe errors of {html.escape(model)} ({len(cases)} answers)"
    style = (
        "body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px;vertical-align:top;text-align:left}"
    )
    header = "".join(f"<th>{h}</th>" for h in head)
    rows = "\n".join(body) if body else f'<tr><td colspan="{len(head)}">no such error</td></tr>'
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{style}</style></head><body><h1>{title}</h1>\n"
        f"<table><thead><tr>{header}</tr></thead><tbody>\n{rows}\n</tbody></table>"
        "</body></html>\n"
    )
