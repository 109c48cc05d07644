"""Stages of workflow/rules/retrieval.smk: chunk, index (BM25, chromadb), rank, measure."""

from __future__ import annotations

import time
from collections.abc import Mapping

from safescale.data.benchmark import read_canonical
from safescale.data.corpus import load_corpus, load_gold_map
from safescale.jsonio import read_jsonl, write_jsonl
from safescale.retrieval.chunking import chunk_passages, read_chunks, write_chunks


def chunk_corpus(
    *,
    source: str,
    fmt: str,
    columns: Mapping[str, str],
    chunk_tokens: int,
    overlap: int,
    max_length: int,
    out_chunks: str,
) -> None:
    from safescale.retrieval.embedder import load_tokenizer

    passages = load_corpus(source, columns, fmt)
    chunks = chunk_passages(passages, load_tokenizer(), chunk_tokens, overlap)
    too_long = [c.chunk_id for c in chunks if c.n_tokens > max_length]
    if too_long:
        print(
            f"note: {len(too_long)} chunks exceed the embedder's {max_length} tokens and are "
            "truncated for dense retrieval only"
        )
    write_chunks(chunks, out_chunks)


def index_bm25(*, chunks: str, out_index: str) -> None:
    from safescale.retrieval.lexical import BM25Index

    BM25Index(read_chunks(chunks)).save(out_index)


def index_dense(
    *,
    chunks: str,
    threads: int,
    max_length: int,
    batch_size: int,
    hnsw: Mapping[str, int],
    out_index: str,
) -> None:
    from safescale.retrieval.dense import build_dense_index

    records = read_chunks(chunks)
    t0 = time.time()
    build_dense_index(records, out_index, threads, max_length, batch_size, dict(hnsw))
    dt = time.time() - t0
    print(f"embedded {len(records)} chunks in {dt:.1f}s ({len(records) / dt:.1f} chunks/s)")


def retrieve(
    *,
    benchmark: str,
    retriever: str,
    bm25: str,
    chroma: str,
    rrf_k: int,
    depth: int,
    threads: int,
    out_rankings: str,
) -> None:
    from safescale.retrieval.search import Retriever, rank_questions

    r = Retriever(retriever, bm25, chroma, rrf_k, threads)
    ranked = rank_questions(read_canonical(benchmark), r, depth)
    write_jsonl(
        [
            {
                "question_id": qid,
                "chunk_ids": [c for c, _ in hits],
                "scores": [round(s, 6) for _, s in hits],
            }
            for qid, hits in ranked.items()
        ],
        out_rankings,
    )


def retrieval_quality(
    *,
    benchmark: str,
    chunks: str,
    gold_map: str | None,
    rankings: Mapping[str, str],
    out_table: str,
    out_figure: str,
) -> None:
    """Recall@k and MRR of each retriever against the gold passages, as a table and figure."""
    import pandas as pd

    from safescale.report.figures.retrieval import plot_retrieval_quality
    from safescale.retrieval.search import retrieval_quality as quality

    questions = read_canonical(benchmark)
    records = read_chunks(chunks)
    chunk_passage = {c.chunk_id: c.passage_id for c in records}
    rows = []
    if gold_map:
        gold = load_gold_map(
            gold_map,
            {q.question_id for q in questions},
            {c.passage_id for c in records},
            strict=False,
        )
        for name, path in rankings.items():
            ranked = {r["question_id"]: r["chunk_ids"] for r in read_jsonl(path)}
            rows.append({"retriever": name, **quality(ranked, chunk_passage, gold)})
    table = pd.DataFrame(
        rows, columns=["retriever", "n_questions", "recall@1", "recall@5", "recall@10", "mrr"]
    )
    table.to_csv(out_table, index=False)
    plot_retrieval_quality(table, out_figure)
