"""Footnotes of SUMMARY.md: a note that many rows share is printed once and each row
carries its marker, so a reader sees a table of numbers, not 36 copies of one reason."""

from __future__ import annotations

import re

import pandas as pd

# Per-row numbers inside an otherwise shared note: the descriptive slope of a line that
# supports no test, and the value of a constant outcome. The footnote drops them; the
# full note stays in the row's CSV.
_ROW_SPECIFIC = (
    re.compile(r";?\s*the line through them has slope [+-]?[\d.]+(?:e[+-]?\d+)? per decade"),
    re.compile(r"\s*\(all [^)]*\)"),
)


def shared_reason(note: str) -> str:
    """The part of a fit note that rows have in common (per-row numbers removed)."""
    text = note
    for pattern in _ROW_SPECIFIC:
        text = pattern.sub("", text)
    return text.strip().rstrip(";").strip()


class Footnotes:
    """Numbered Markdown footnotes (`[^n]`), one per distinct text, in order of first use."""

    def __init__(self) -> None:
        self._texts: dict[str, int] = {}
        self._counts: dict[str, int] = {}

    def mark(self, text: object, uses: int = 1) -> str:
        """The marker of `text` ('' for an empty or missing note); `uses` rows refer to it."""
        if text is None or (isinstance(text, float) and pd.isna(text)) or not str(text).strip():
            return ""
        key = str(text).strip()
        if key not in self._texts:
            self._texts[key] = len(self._texts) + 1
            self._counts[key] = 0
        self._counts[key] += uses
        return f"[^{self._texts[key]}]"

    def mark_column(self, table: pd.DataFrame, column: str = "note") -> pd.DataFrame:
        """`table` with its note column replaced by markers (reasons shortened to what rows
        share); unchanged when it has no such column."""
        if column not in table:
            return table
        out = table.copy()
        out[column] = [
            self.mark(shared_reason(str(v)) if isinstance(v, str) else v) for v in out[column]
        ]
        return out

    def markdown(self) -> str:
        """The footnote definitions, each once, with how many rows cite it."""
        lines = []
        for text, number in self._texts.items():
            uses = self._counts[text]
            count = f" ({uses} rows)" if uses > 1 else ""
            lines.append(f"[^{number}]: {text}{count}")
        return "\n".join(lines)
