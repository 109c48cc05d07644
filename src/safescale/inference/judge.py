"""Optional LLM-judge re-parse of outputs the rule-based parser left NULL.

The study re-parsed free text with a stronger LLM. Here a configured judge model
(any registry model) reads the question, the options and the raw output, and
names the chosen letter or NONE. Only NULL outputs are sent; every judged output
keeps its raw text, the judge's reply and `letter_source: "judge"`, so the
effect of the judge is countable and reviewable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from safescale.data.question import Question
from safescale.inference.parsing import parse_letter

JUDGE_SYSTEM = (
    "You read a model's answer to a multiple-choice question and report which option it "
    "chose. Reply with the option letter only, or NONE if it chose no option."
)


def judge_messages(q: Question, raw: str) -> list[dict[str, str]]:
    options = "\n".join(f"{k}. {v}" for k, v in q.options.items())
    user = (
        f'Question: {q.question}\nOptions:\n{options}\n\nAnswer given: "{raw.strip()}"\n\n'
        "Which option letter does the answer choose?"
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def judge_record(
    record: dict, q: Question, ask: Callable[[list[dict[str, str]]], str]
) -> tuple[dict, int, int]:
    """(new record, outputs judged, outputs recovered); outputs with a letter are untouched."""
    if record["status"] != "ok":
        return record, 0, 0
    judged = recovered = 0
    outputs = [record["greedy"], *record["samples"]]
    cache: dict[str, tuple[str, str | None]] = {}  # identical raw texts get one judge call
    new_outputs = []
    for out in outputs:
        out = {**out, "letter_source": "rule" if out["letter"] else None}
        if out["letter"] is None and out["raw"].strip():
            if out["raw"] not in cache:
                reply = ask(judge_messages(q, out["raw"]))
                cache[out["raw"]] = (reply, parse_letter(reply, q.options))
            reply, letter = cache[out["raw"]]
            judged += 1
            out.update(judge_raw=reply, letter=letter, letter_source="judge" if letter else None)
            recovered += letter is not None
        new_outputs.append(out)
    return {**record, "greedy": new_outputs[0], "samples": new_outputs[1:]}, judged, recovered


def judge_records(
    records: Iterable[dict],
    questions: dict[str, Question],
    ask: Callable[[list[dict[str, str]]], str],
) -> tuple[list[dict], dict[str, int]]:
    out, judged, recovered = [], 0, 0
    for rec in records:
        new, j, r = judge_record(rec, questions[rec["question_id"]], ask)
        out.append(new)
        judged, recovered = judged + j, recovered + r
    return out, {"outputs_judged": judged, "outputs_recovered": recovered}
