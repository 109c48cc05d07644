"""Retrievers behind one interface, reciprocal-rank fusion, and retrieval quality."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from safescale.data.question import Question
from safescale.retrieval.chunking import Chunk
from safescale.retrieval.dense import DenseIndex
from safescale.retrieval.lexical import BM25Index

RETRIEVERS = ("bm25", "dense", "hybrid")
FUSION_DEPTH = 100  # each retriever's list length fed into the fusion


def rrf(rankings: Sequence[Sequence[str]], k: int = 60) -> list[tuple[str, float]]:
    """Reciprocal-rank fusion: score = sum 1 / (k + rank); ties by id for determinism."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, cid in enumerate(ranking, start=1):
            scores[cid] = scores.get(cid, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


class Retriever:
    """Opens the indexes a retriever kind needs; read-only."""

    def __init__(
        self,
        kind: str,
        bm25_path: str | Path,
        chroma_path: str | Path,
        rrf_k: int = 60,
        threads: int = 1,
    ):
        if kind not in RETRIEVERS:
            raise ValueError(f"unknown retriever '{kind}'; expected one of {RETRIEVERS}")
        self.kind = kind
        self.rrf_k = rrf_k
        self._bm25 = BM25Index.load(bm25_path) if kind in ("bm25", "hybrid") else None
        self._dense = DenseIndex(chroma_path, threads) if kind in ("dense", "hybrid") else None

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        if self._bm25 is not None and self._dense is None:
            return self._bm25.search(query, k)
        if self._dense is not None and self._bm25 is None:
            return self._dense.search(query, k)
        assert self._bm25 is not None and self._dense is not None  # hybrid opens both
        depth = max(k, FUSION_DEPTH)
        lists = [
            [cid for cid, _ in self._bm25.search(query, depth)],
            [cid for cid, _ in self._dense.search(query, depth)],
        ]
        return rrf(lists, self.rrf_k)[:k]


def question_query(q: Question) -> str:
    """The question stem plus its options: the options carry most of the topic words."""
    return q.question + "\n" + "\n".join(q.options.values())


def rank_questions(
    questions: Iterable[Question], retriever: Retriever, depth: int
) -> dict[str, list[tuple[str, float]]]:
    return {q.question_id: retriever.search(question_query(q), depth) for q in questions}


def retrieval_quality(
    rankings: Mapping[str, Sequence[str]],
    chunk_passage: Mapping[str, str],
    gold: Mapping[str, Sequence[str]],
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Recall@k (a gold passage among the top-k chunks) and MRR over questions with gold."""
    qids = [q for q in rankings if gold.get(q)]
    out: dict[str, float] = {"n_questions": float(len(qids))}
    if not qids:
        return out | {f"recall@{k}": float("nan") for k in ks} | {"mrr": float("nan")}
    first_hit: list[int | None] = []
    for qid in qids:
        gold_set = set(gold[qid])
        rank = next(
            (r for r, cid in enumerate(rankings[qid], 1) if chunk_passage[cid] in gold_set), None
        )
        first_hit.append(rank)
    for k in ks:
        out[f"recall@{k}"] = sum(r is not None and r <= k for r in first_hit) / len(qids)
    out["mrr"] = sum(1.0 / r for r in first_hit if r) / len(qids)
    return out


def load_rankings(path: str, chunks: Mapping[str, Chunk]) -> dict[str, list[Chunk]]:
    """A rankings file (one line per question) as the ranked chunks themselves."""
    from safescale.jsonio import read_jsonl

    return {r["question_id"]: [chunks[c] for c in r["chunk_ids"]] for r in read_jsonl(path)}
