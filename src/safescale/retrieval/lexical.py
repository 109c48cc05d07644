"""BM25Okapi over chunks with a small, documented tokenizer."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
from rank_bm25 import BM25Okapi

from safescale.retrieval.chunking import Chunk

_TOKEN = re.compile(r"[a-z0-9]+")
# A short English stop list: function words only, so clinical terms ("no", "not") survive
# in phrases but do not dominate scores.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "their",
        "this",
        "to",
        "was",
        "were",
        "which",
        "with",
        "what",
        "who",
        "whom",
        "most",
        "best",
        "next",
        "following",
    ]
)


def tokenize(text: str) -> list[str]:
    """Lower-case alphanumeric runs minus stop words; no stemming (deterministic, inspectable)."""
    return [t for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS]


class BM25Index:
    def __init__(self, chunks: list[Chunk]):
        self.chunk_ids = [c.chunk_id for c in chunks]
        self.bm25 = BM25Okapi([tokenize(c.indexed_text) for c in chunks])

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        scores = self.bm25.get_scores(tokenize(query))
        # Stable order: score descending, then chunk position (deterministic ties).
        order = np.lexsort((np.arange(len(scores)), -scores))[:k]
        return [(self.chunk_ids[i], float(scores[i])) for i in order]

    def save(self, path: str | Path) -> None:
        with Path(path).open("wb") as fh:
            pickle.dump(self, fh, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def load(path: str | Path) -> BM25Index:
        with Path(path).open("rb") as fh:
            return pickle.load(fh)
