"""Load a RadSaFE-style benchmark through a column mapping into canonical Questions.

Every problem in the file is collected and raised together (file, row, column,
what was expected) before any model runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safescale.conditions import LABEL_KINDS, LETTERS
from safescale.data.question import OptionLabels, Question
from safescale.data.tables import cell_text, read_rows
from safescale.errors import InputError, Problem

_LETTER_RE = re.compile(r"^\(?([A-Ea-e])[.)]?$")
_TRUE = {"1", "1.0", "true", "yes"}
_FALSE = {"0", "0.0", "false", "no"}


@dataclass(frozen=True)
class ColumnMapping:
    """Where each canonical field lives in a user's table.

    `option` and `label` are patterns: `{letter}` is A-E, `{i}` is 1-5 and
    `{kind}` is the user's name for a label kind (see `label_names`).
    An evidence column mapped to None means the dataset has no such evidence.
    """

    question_id: str = "question_id"
    question: str = "question_text"
    correct: str = "correct_answer"
    option: str = "option_{letter}"
    label: str = "option_{i}_{kind}"
    evidence_clean: str | None = "evidence_clean"
    evidence_conflict: str | None = "evidence_conflict"
    meta: tuple[str, ...] = ()
    label_names: Mapping[str, str] = field(
        default_factory=lambda: {kind: kind for kind in LABEL_KINDS}
    )

    @classmethod
    def from_config(cls, columns: Mapping[str, Any]) -> ColumnMapping:
        data = dict(columns)
        if "meta" in data:
            data["meta"] = tuple(data["meta"] or ())
        if "label_names" in data:
            data["label_names"] = {**{k: k for k in LABEL_KINDS}, **data["label_names"]}
        return cls(**data)

    def option_column(self, letter: str) -> str:
        return self.option.format(letter=letter, i=LETTERS.index(letter) + 1)

    def label_column(self, letter: str, kind: str) -> str:
        return self.label.format(
            letter=letter, i=LETTERS.index(letter) + 1, kind=self.label_names[kind]
        )


def load_benchmark(
    path: str | Path,
    mapping: ColumnMapping | None = None,
    fmt: str = "auto",
    required_evidence: Iterable[str] = (),
) -> list[Question]:
    """Read, validate and convert; raise InputError listing every problem.

    `required_evidence` names canonical evidence fields ("evidence_clean",
    "evidence_conflict") that configured conditions need: an empty cell there
    is an error. A field whose column is mapped to None is not required: the
    conditions that need it are skipped and recorded as skipped instead.
    """
    mapping = mapping or ColumnMapping()
    path = Path(path)
    columns, rows = read_rows(path, fmt)
    src = str(path)
    problems = _check_columns(src, columns, rows, mapping)
    if problems:
        raise InputError(problems)
    required = {f for f in required_evidence if getattr(mapping, f) is not None}
    questions: list[Question] = []
    seen: dict[str, int] = {}
    for rownum, row in enumerate(rows, start=1):
        question, row_problems = _convert_row(src, rownum, row, mapping, required)
        problems.extend(row_problems)
        qid = cell_text(row.get(mapping.question_id))
        if qid and qid in seen:
            problems.append(
                Problem(
                    src,
                    f"duplicate question id; first seen in row {seen[qid]}",
                    row=rownum,
                    column=mapping.question_id,
                    record_id=qid,
                )
            )
        seen.setdefault(qid, rownum)
        if question is not None:
            questions.append(question)
    if not rows:
        problems.append(Problem(src, "no questions found; expected at least one data row"))
    if problems:
        raise InputError(problems)
    return questions


def _check_columns(
    src: str, columns: list[str], rows: list[dict[str, Any]], mapping: ColumnMapping
) -> list[Problem]:
    present = set(columns)
    needed = [mapping.question_id, mapping.question, mapping.correct, *mapping.meta]
    needed += [c for c in (mapping.evidence_clean, mapping.evidence_conflict) if c]
    option_cols = [mapping.option_column(letter) for letter in LETTERS]
    needed += [c for c in option_cols[:2]]
    # Label columns are required for every letter that has an option column.
    for letter, col in zip(LETTERS, option_cols, strict=True):
        if col in present or letter in LETTERS[:2]:
            needed += [mapping.label_column(letter, kind) for kind in LABEL_KINDS]
    return [
        Problem(src, "required column is missing (check the column mapping in config)", column=c)
        for c in dict.fromkeys(needed)
        if c not in present
    ]


def _parse_label(value: Any) -> int | None:
    text = cell_text(value).lower()
    if text in _TRUE:
        return 1
    if text in _FALSE:
        return 0
    return None


def _convert_row(
    src: str, rownum: int, row: dict[str, Any], mapping: ColumnMapping, required: set[str]
) -> tuple[Question | None, list[Problem]]:
    qid = cell_text(row.get(mapping.question_id))
    problems: list[Problem] = []

    def problem(column: str, message: str) -> None:
        problems.append(Problem(src, message, row=rownum, column=column, record_id=qid or None))

    if not qid:
        problem(mapping.question_id, "expected a non-empty question id")
    text = cell_text(row.get(mapping.question))
    if not text:
        problem(mapping.question, "expected non-empty question text")

    filled = [
        (letter, cell_text(row.get(mapping.option_column(letter))))
        for letter in LETTERS
        if mapping.option_column(letter) in row
    ]
    last = max((i for i, (_, t) in enumerate(filled) if t), default=-1)
    options = {letter: t for letter, t in filled[: last + 1]}
    for letter, t in options.items():
        if not t:
            problem(
                mapping.option_column(letter),
                f"gap in option letters: option {letter} is empty but a later option is filled",
            )
    if len(options) < 2:
        problem(mapping.option_column("A"), f"expected 2 to 5 options, found {len(options)}")

    labels: dict[str, OptionLabels] = {}
    for letter, _ in filled:
        values = {}
        for kind in LABEL_KINDS:
            col = mapping.label_column(letter, kind)
            raw = row.get(col)
            parsed = _parse_label(raw)
            if letter in options and parsed is None:
                problem(col, f"expected a 0/1 label, got {cell_text(raw)!r}")
            elif letter not in options and parsed not in (None, 0):
                problem(col, f"label is set but option {letter} is empty")
            values[kind] = parsed or 0
        if letter in options:
            labels[letter] = OptionLabels(**values)

    raw_correct = cell_text(row.get(mapping.correct))
    match = _LETTER_RE.match(raw_correct)
    correct = match.group(1).upper() if match else ""
    if correct not in options:
        allowed = "-".join([next(iter(options), "A"), list(options)[-1]]) if options else "A-E"
        problem(
            mapping.correct,
            f"expected the correct letter among the options ({allowed}), got {raw_correct!r}",
        )

    evidence: dict[str, str | None] = {}
    for fieldname in ("evidence_clean", "evidence_conflict"):
        col = getattr(mapping, fieldname)
        value = cell_text(row.get(col)) if col else ""
        evidence[fieldname] = value or None
        if fieldname in required and not value:
            problem(
                col,
                f"expected non-empty {fieldname.replace('_', ' ')} (a configured "
                "condition needs it)",
            )

    if problems:
        return None, problems
    meta = {col: cell_text(row.get(col)) for col in mapping.meta}
    return (
        Question(
            question_id=qid,
            question=text,
            options=options,
            correct=correct,
            labels=labels,
            meta=meta,
            **evidence,
        ),
        [],
    )


def write_canonical(questions: Iterable[Question], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for q in questions:
            fh.write(json.dumps(q.to_dict(), ensure_ascii=False) + "\n")


def read_canonical(path: str | Path) -> list[Question]:
    with Path(path).open(encoding="utf-8") as fh:
        return [Question.from_dict(json.loads(line)) for line in fh if line.strip()]
