"""Reading user tables (CSV, JSONL, Parquet) as rows of strings, with located errors.

`read_table` goes on past every problem it can (bad bytes, rows of the wrong
length, bad JSON lines) so that the loader can report them together with the
problems in the rows it could read.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safescale.errors import InputError, Problem

FORMATS = ("csv", "tsv", "jsonl", "parquet")
# What Python's decoder puts where a byte is not valid UTF-8.
_REPLACEMENT = "\ufffd"


@dataclass
class Table:
    """Column names, rows (None where a row could not be read) and the problems found.

    Row numbers are 1-based and exclude the header: `rows[n - 1]` is row n.
    """

    columns: list[str]
    rows: list[dict[str, Any] | None]
    problems: list[Problem] = field(default_factory=list)


def detect_format(path: Path, declared: str = "auto") -> str:
    if declared != "auto":
        if declared not in FORMATS:
            raise InputError(
                [Problem(str(path), f"unknown format '{declared}'; expected {FORMATS}")]
            )
        return declared
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("json", "ndjson"):
        suffix = "jsonl"
    if suffix not in FORMATS:
        raise InputError(
            [Problem(str(path), f"cannot tell the format from suffix '.{suffix}'; set format")]
        )
    return suffix


def _decode_utf8(data: bytes) -> tuple[str, bool]:
    """The text, and whether bytes had to be replaced (then cells say where)."""
    try:
        return data.decode("utf-8-sig"), True
    except UnicodeDecodeError:
        return data.decode("utf-8-sig", errors="replace"), False


def read_table(path: str | Path, fmt: str = "auto") -> Table:
    """Every readable row, with the problems of the file itself (not of the cells' meaning)."""
    path = Path(path)
    if not path.exists():
        raise InputError([Problem(str(path), "file not found")])
    fmt = detect_format(path, fmt)
    if fmt == "parquet":
        import pandas as pd

        frame = pd.read_parquet(path)
        rows: list[dict[str, Any] | None] = [
            {k: (None if _is_missing(v) else v) for k, v in rec.items()}
            for rec in frame.to_dict(orient="records")
        ]
        return Table([str(c) for c in frame.columns], rows)
    text, valid_utf8 = _decode_utf8(path.read_bytes())
    if fmt == "jsonl":
        table = _read_jsonl(path, text)
    else:
        table = _read_delimited(path, text, "\t" if fmt == "tsv" else ",")
    if not valid_utf8:
        table.problems[:0] = _encoding_problems(path, table)
    return table


def read_rows(path: str | Path, fmt: str = "auto") -> tuple[list[str], list[dict[str, Any]]]:
    """Return (column names, rows), or raise InputError listing every problem of the file."""
    table = read_table(path, fmt)
    if table.problems:
        raise InputError(table.problems)
    return table.columns, [row for row in table.rows if row is not None]


def _read_delimited(path: Path, text: str, delimiter: str) -> Table:
    records = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if r]
    if not records:
        return Table([], [])
    header, *body = records
    table = Table(header, [])
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if name in seen:
            table.problems.append(
                Problem(
                    str(path),
                    f"the header names this column twice (fields {seen[name]} and {position}); "
                    "expected unique column names",
                    column=name,
                )
            )
        seen.setdefault(name, position)
    for rownum, record in enumerate(body, start=1):
        if len(record) != len(header):
            table.problems.append(
                Problem(
                    str(path),
                    f"row {rownum} has {len(record)} fields, the header has {len(header)} "
                    "(a missing or extra delimiter, or an unclosed quote above)",
                    row=rownum,
                )
            )
            table.rows.append(None)
        else:
            table.rows.append(dict(zip(header, record, strict=True)))
    return table


def _read_jsonl(path: Path, text: str) -> Table:
    table = Table([], [])
    columns: dict[str, None] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            table.problems.append(Problem(str(path), f"line {lineno}: invalid JSON ({exc.msg})"))
            table.rows.append(None)
            continue
        if not isinstance(obj, dict):
            table.problems.append(Problem(str(path), f"line {lineno}: expected a JSON object"))
            table.rows.append(None)
            continue
        columns.update(dict.fromkeys(obj))
        table.rows.append(obj)
    table.columns = list(columns)
    return table


def _encoding_problems(path: Path, table: Table) -> list[Problem]:
    """Where the bytes that are not UTF-8 ended up: header names, then cells."""
    message = "text is not valid UTF-8; expected UTF-8 text (re-save the file as UTF-8)"
    problems = [
        Problem(str(path), f"header: {message}", column=name)
        for name in table.columns
        if _REPLACEMENT in name
    ]
    for rownum, row in enumerate(table.rows, start=1):
        for column, value in (row or {}).items():
            if isinstance(value, str) and _REPLACEMENT in value:
                problems.append(Problem(str(path), message, row=rownum, column=column))
    if not problems:  # e.g. inside a row that could not be split into fields
        problems.append(Problem(str(path), message))
    return problems


def _is_missing(value: Any) -> bool:
    try:
        return value is None or value != value  # NaN
    except (TypeError, ValueError):
        return False


def cell_text(value: Any) -> str:
    """A cell as stripped text; missing cells are the empty string."""
    if _is_missing(value):
        return ""
    return str(value).strip()
