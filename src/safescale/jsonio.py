"""JSON and JSON-lines files: the artifacts every stage reads and writes.

Writers go through a temporary file and an atomic rename, so a crash never
leaves a truncated file that Snakemake would take as complete.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_jsonl(path: str | Path) -> list[dict]:
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@contextmanager
def _atomic(path: str | Path) -> Iterator[TextIO]:
    """A text file at `path` that appears only once the block finished without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        yield fh
    tmp.replace(path)


def write_jsonl(records: Sequence[Mapping], path: str | Path) -> None:
    with _atomic(path) as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def _json_default(value: Any) -> Any:
    """numpy scalars become plain numbers; anything else unknown (paths, dates) a string."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    return str(value)


def write_json(obj: Any, path: str | Path) -> None:
    """Indented JSON."""
    with _atomic(path) as fh:
        fh.write(json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n")


def write_text(text: str, path: str | Path) -> None:
    """A text file (Markdown, reStructuredText) through the same atomic rename."""
    with _atomic(path) as fh:
        fh.write(text)
