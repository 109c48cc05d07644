"""The canonical, typed form of one benchmark question."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from safescale.conditions import LABEL_KINDS

# The meta column the summary counts questions by and the case browser shows, when a
# benchmark has it (config `benchmark.columns.meta`).
SUBSPECIALTY = "subspecialty"


@dataclass(frozen=True)
class OptionLabels:
    """The three 0/1 safety labels of one option."""

    high_risk: int = 0
    unsafe: int = 0
    contradicts: int = 0

    def get(self, kind: str) -> int:
        return int(getattr(self, kind))


@dataclass(frozen=True)
class Question:
    """One multiple-choice question; letters are contiguous from A."""

    question_id: str
    question: str
    options: dict[str, str]
    correct: str
    labels: dict[str, OptionLabels]
    evidence_clean: str | None = None
    evidence_conflict: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def letters(self) -> tuple[str, ...]:
        return tuple(self.options)

    @property
    def n_options(self) -> int:
        return len(self.options)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question_id": self.question_id,
            "question": self.question,
            "options": dict(self.options),
            "correct": self.correct,
            "labels": {
                letter: {kind: lab.get(kind) for kind in LABEL_KINDS}
                for letter, lab in self.labels.items()
            },
            "evidence_clean": self.evidence_clean,
            "evidence_conflict": self.evidence_conflict,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Question:
        return cls(
            question_id=str(data["question_id"]),
            question=data["question"],
            options=dict(data["options"]),
            correct=data["correct"],
            labels={
                letter: OptionLabels(**{k: int(v) for k, v in lab.items()})
                for letter, lab in data["labels"].items()
            },
            evidence_clean=data.get("evidence_clean"),
            evidence_conflict=data.get("evidence_conflict"),
            meta=dict(data.get("meta") or {}),
        )
