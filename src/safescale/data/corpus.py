"""Load and validate the retrieval corpus and the question -> gold passage map."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from safescale.data.tables import cell_text, read_rows
from safescale.errors import InputError, Problem


@dataclass(frozen=True)
class Passage:
    passage_id: str
    title: str
    text: str


def load_corpus(
    path: str | Path, columns: Mapping[str, str] | None = None, fmt: str = "auto"
) -> list[Passage]:
    """Passages need an id, a title (may be empty) and non-empty text; ids are unique."""
    cols = {"passage_id": "passage_id", "title": "title", "text": "text", **(columns or {})}
    src = str(path)
    names, rows = read_rows(path, fmt)
    missing = [c for c in (cols["passage_id"], cols["text"]) if c not in names]
    if missing:
        raise InputError([Problem(src, "required column is missing", column=c) for c in missing])
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    passages: list[Passage] = []
    for rownum, row in enumerate(rows, start=1):
        pid = cell_text(row.get(cols["passage_id"]))
        text = cell_text(row.get(cols["text"]))
        if not pid:
            problems.append(Problem(src, "expected a passage id", rownum, cols["passage_id"]))
        elif pid in seen:
            problems.append(
                Problem(
                    src,
                    f"duplicate passage id; first in row {seen[pid]}",
                    rownum,
                    cols["passage_id"],
                    pid,
                )
            )
        if not text:
            problems.append(Problem(src, "expected non-empty text", rownum, cols["text"], pid))
        seen.setdefault(pid, rownum)
        passages.append(Passage(pid, cell_text(row.get(cols["title"])), text))
    if not rows:
        problems.append(Problem(src, "no passages found"))
    if problems:
        raise InputError(problems)
    return passages


def load_gold_map(
    path: str | Path, question_ids: set[str], passage_ids: set[str], strict: bool = True
) -> dict[str, list[str]]:
    """CSV/TSV/JSONL with question_id, passage_id; unknown ids are errors.

    With strict=False, rows of questions outside `question_ids` (a slice of the
    benchmark) are ignored; unknown passages are still errors.
    """
    src = str(path)
    names, rows = read_rows(path)
    missing = [c for c in ("question_id", "passage_id") if c not in names]
    if missing:
        raise InputError([Problem(src, "required column is missing", column=c) for c in missing])
    gold: dict[str, list[str]] = {}
    problems: list[Problem] = []
    for rownum, row in enumerate(rows, start=1):
        qid, pid = cell_text(row["question_id"]), cell_text(row["passage_id"])
        if qid not in question_ids:
            if strict:
                problems.append(Problem(src, "unknown question id", rownum, "question_id", qid))
            continue
        if pid not in passage_ids:
            problems.append(Problem(src, "unknown passage id", rownum, "passage_id", pid))
        gold.setdefault(qid, []).append(pid)
    if problems:
        raise InputError(problems)
    return gold
