"""Every exception type of the package: input errors that name file, row and column and
carry every problem at once, and model-file errors that name the model."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one input cell (row/column may be None for file-level issues)."""

    path: str
    message: str
    row: int | None = None
    column: str | None = None
    record_id: str | None = None

    def __str__(self) -> str:
        where = [self.path]
        if self.row is not None:
            where.append(f"row {self.row}" + (f" ({self.record_id})" if self.record_id else ""))
        if self.column is not None:
            where.append(f"column '{self.column}'")
        return ", ".join(where) + f": {self.message}"


class InputError(ValueError):
    """Raised with all problems found in an input, so a user fixes them in one pass."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        n = len(self.problems)
        header = f"{n} problem{'s' if n != 1 else ''} found in input:"
        super().__init__("\n".join([header, *(f"  - {p}" for p in self.problems)]))


class ModelError(RuntimeError):
    """A model file is missing, corrupt or cannot be fetched; names the model."""


class OutputBusyError(RuntimeError):
    """Another process is writing the same output (it holds the lock on its partial file)."""


class OpenAIServerError(RuntimeError):
    """A non-2xx answer from an OpenAI-compatible server (message already free of the
    API key); `retry_after` carries the server's Retry-After seconds when it sent one."""

    def __init__(self, status_code: int, message: str, retry_after: float | None = None):
        super().__init__(f"HTTP {status_code}: {message}")
        self.status_code = status_code
        self.retry_after = retry_after
