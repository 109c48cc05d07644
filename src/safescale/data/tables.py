"""Reading user tables (CSV, JSONL, Parquet) as rows of strings, with located errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from safescale.errors import InputError, Problem

FORMATS = ("csv", "tsv", "jsonl", "parquet")


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


def _decode_utf8(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        problems = []
        for lineno, line in enumerate(data.split(b"\n"), start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append(
                    Problem(
                        str(path),
                        f"line {lineno}: text is not valid UTF-8 (byte {line[exc.start]:#04x} "
                        f"at character {exc.start + 1}); expected UTF-8 text",
                    )
                )
        raise InputError(problems) from None


def read_rows(path: str | Path, fmt: str = "auto") -> tuple[list[str], list[dict[str, Any]]]:
    """Return (column names, rows); rows are 1-based in error messages, header excluded."""
    path = Path(path)
    if not path.exists():
        raise InputError([Problem(str(path), "file not found")])
    fmt = detect_format(path, fmt)
    if fmt == "parquet":
        import pandas as pd

        frame = pd.read_parquet(path)
        rows = [
            {k: (None if _is_missing(v) else v) for k, v in rec.items()}
            for rec in frame.to_dict(orient="records")
        ]
        return [str(c) for c in frame.columns], rows
    text = _decode_utf8(path, path.read_bytes())
    if fmt == "jsonl":
        return _read_jsonl(path, text)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if fmt == "tsv" else ",")
    rows = list(reader)
    columns = list(reader.fieldnames or [])
    for i, row in enumerate(rows, start=1):
        if None in row:
            raise InputError(
                [Problem(str(path), f"has more fields than the header ({len(columns)})", row=i)]
            )
    return columns, rows


def _read_jsonl(path: Path, text: str) -> tuple[list[str], list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    columns: dict[str, None] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(str(path), f"line {lineno}: invalid JSON ({exc.msg})"))
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(str(path), f"line {lineno}: expected a JSON object"))
            continue
        columns.update(dict.fromkeys(obj))
        rows.append(obj)
    if problems:
        raise InputError(problems)
    return list(columns), rows


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
