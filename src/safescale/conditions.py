"""The deployment conditions of the study: the one place their names live."""

from __future__ import annotations

from collections.abc import Iterable

CLOSED_BOOK = "closed_book"
CLEAN_EVIDENCE = "clean_evidence"
CONFLICT_EVIDENCE = "conflict_evidence"
STANDARD_RAG = "standard_rag"
TOP_1 = "top_1"
TOP_5 = "top_5"
TOP_10 = "top_10"
PADDED_TOP_1 = "padded_top_1"
AGENTIC_RAG = "agentic_rag"
MAX_CONTEXT = "max_context"

ALL_CONDITIONS: tuple[str, ...] = (
    CLOSED_BOOK,
    CLEAN_EVIDENCE,
    CONFLICT_EVIDENCE,
    STANDARD_RAG,
    TOP_1,
    TOP_5,
    TOP_10,
    PADDED_TOP_1,
    AGENTIC_RAG,
    MAX_CONTEXT,
)

# The six headline conditions of the study, in the order tables show them.
HEADLINE_CONDITIONS: tuple[str, ...] = (
    CLOSED_BOOK,
    CLEAN_EVIDENCE,
    CONFLICT_EVIDENCE,
    STANDARD_RAG,
    AGENTIC_RAG,
    MAX_CONTEXT,
)

REFERENCE_CONDITION = CLOSED_BOOK


def _missing(value: object) -> bool:
    try:
        return value is None or bool(value != value)  # NaN is the one value unequal to itself
    except TypeError:  # pandas.NA refuses to be a bool
        return True


def ordered_conditions(values: Iterable[object]) -> list[str]:
    """The conditions present in ``values`` in study order, reference first, unknown
    names sorted after: every table and figure lists them alike, and contrasts read
    'vs closed-book'. Missing values (None, NaN) are skipped."""
    present = {str(v) for v in values if not _missing(v)}
    study = (REFERENCE_CONDITION, *(c for c in ALL_CONDITIONS if c != REFERENCE_CONDITION))
    known = [c for c in study if c in present]
    return known + sorted(present - set(known))


# Conditions whose context comes from a benchmark column; they are skipped
# (and recorded as skipped) for questions where that column is empty.
EVIDENCE_FIELD: dict[str, str] = {
    CLEAN_EVIDENCE: "evidence_clean",
    CONFLICT_EVIDENCE: "evidence_conflict",
}

# Retrieval conditions: how many top-ranked chunks each uses (None = from config).
RETRIEVAL_TOP_K: dict[str, int | None] = {
    STANDARD_RAG: None,
    TOP_1: 1,
    TOP_5: 5,
    TOP_10: 10,
}

# Conditions whose context is the retriever's ranking read from the top: for one
# question, a shorter one's evidence is the start of a longer one's, so one job per
# model answers them together and evaluates the shared start once
# (rule run_inference_ranked). padded_top_1 pads its chunk and shares nothing.
RANKED_EVIDENCE: tuple[str, ...] = (TOP_1, STANDARD_RAG, TOP_5, TOP_10, MAX_CONTEXT)
RANKED_EVIDENCE_JOB = "ranked_evidence"


def answered_together(conditions: Iterable[str]) -> list[str]:
    """The configured conditions one ranked-evidence job answers (none if fewer than two)."""
    chosen = [c for c in RANKED_EVIDENCE if c in set(conditions)]
    return chosen if len(chosen) >= 2 else []


LETTERS: tuple[str, ...] = ("A", "B", "C", "D", "E")
LABEL_KINDS: tuple[str, ...] = ("high_risk", "unsafe", "contradicts")
