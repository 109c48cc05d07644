"""One function per Snakemake rule, named like the rule: the scripts in
workflow/scripts/ only pass snakemake's input/output/params to these.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from safescale import conditions as C
from safescale.benchmark import ColumnMapping, load_benchmark, read_canonical, write_canonical
from safescale.corpus import load_corpus, load_gold_map
from safescale.jsonio import read_json, read_jsonl, write_json, write_jsonl
from safescale.models import fetch_model, parse_registry
from safescale.retrieval.chunking import Chunk, chunk_passages, read_chunks, write_chunks


def required_evidence(conditions: Sequence[str]) -> list[str]:
    return [C.EVIDENCE_FIELD[c] for c in conditions if c in C.EVIDENCE_FIELD]


def prepare_benchmark(
    source: str,
    fmt: str,
    columns: Mapping[str, Any],
    conditions: Sequence[str],
    limit: int | None,
    shuffle: bool,
    seed: int,
    out_jsonl: str,
    out_summary: str,
) -> None:
    """Validate the user's file (all problems at once) and write the canonical slice."""
    mapping = ColumnMapping.from_config(columns)
    questions = load_benchmark(source, mapping, fmt, required_evidence(conditions))
    chosen = list(questions)
    if shuffle:
        random.Random(seed).shuffle(chosen)
    if limit:
        chosen = chosen[:limit]
    write_canonical(chosen, out_jsonl)
    unsupported = [
        c
        for c in conditions
        if c in C.EVIDENCE_FIELD and getattr(mapping, C.EVIDENCE_FIELD[c]) is None
    ]
    write_json(
        {
            "source": source,
            "n_questions_in_file": len(questions),
            "n_questions_used": len(chosen),
            "question_ids": [q.question_id for q in chosen],
            "conditions_without_data": unsupported,
        },
        out_summary,
    )


def fetch_model_weights(entry: Mapping[str, Any], cache_dir: str, out_manifest: str) -> None:
    spec = next(iter(parse_registry([entry]).values()))
    t0 = time.time()
    path, digest = fetch_model(spec, Path(cache_dir))
    write_json(
        {
            "name": spec.name,
            "family": spec.family,
            "params_b": spec.params_b,
            "path": str(path),
            "sha256": digest,
            "size_bytes": path.stat().st_size,
            "prompt_style": spec.prompt_style,
            "n_ctx": spec.n_ctx,
            "licence": spec.licence,
            "served_model": entry.get("served_model"),
            "source": entry.get("source"),
            "seconds": round(time.time() - t0, 2),
        },
        out_manifest,
    )


def chunk_corpus(
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


def index_bm25(chunks_path: str, out_index: str) -> None:
    from safescale.retrieval.lexical import BM25Index

    BM25Index(read_chunks(chunks_path)).save(out_index)


def index_dense(
    chunks_path: str,
    out_dir: str,
    threads: int,
    max_length: int,
    batch_size: int,
    hnsw: Mapping[str, int],
) -> None:
    from safescale.retrieval.dense import build_dense_index

    chunks = read_chunks(chunks_path)
    t0 = time.time()
    build_dense_index(chunks, out_dir, threads, max_length, batch_size, dict(hnsw))
    dt = time.time() - t0
    print(f"embedded {len(chunks)} chunks in {dt:.1f}s ({len(chunks) / dt:.1f} chunks/s)")


def retrieve(
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


def load_rankings(path: str, chunks: Mapping[str, Chunk]) -> dict[str, list[Chunk]]:
    return {r["question_id"]: [chunks[c] for c in r["chunk_ids"]] for r in read_jsonl(path)}


def retrieval_quality(
    benchmark: str,
    chunks_path: str,
    gold_map: str | None,
    rankings: Mapping[str, str],
    out_table: str,
    out_figure: str,
) -> None:
    import pandas as pd

    from safescale.retrieval.search import retrieval_quality as quality

    questions = read_canonical(benchmark)
    chunks = read_chunks(chunks_path)
    chunk_passage = {c.chunk_id: c.passage_id for c in chunks}
    rows = []
    if gold_map:
        gold = load_gold_map(
            gold_map,
            {q.question_id for q in questions},
            {c.passage_id for c in chunks},
            strict=False,
        )
        for name, path in rankings.items():
            ranked = {r["question_id"]: r["chunk_ids"] for r in read_jsonl(path)}
            rows.append({"retriever": name, **quality(ranked, chunk_passage, gold)})
    table = pd.DataFrame(
        rows, columns=["retriever", "n_questions", "recall@1", "recall@5", "recall@10", "mrr"]
    )
    table.to_csv(out_table, index=False)
    from safescale.figures import plot_retrieval_quality

    plot_retrieval_quality(table, out_figure)


def _open_renderer(manifest: Mapping[str, Any]):
    from llama_cpp import Llama

    from safescale.prompts import Renderer

    vocab = Llama(manifest["path"], vocab_only=True, verbose=False)
    return Renderer(manifest["prompt_style"], vocab)


def _chat_generator(
    manifest: Mapping[str, Any], max_ctx: int, threads: int, n_batch: int, n_gpu_layers: int
) -> Callable[[list[dict[str, str]], int], str]:
    """Greedy chat completions from the model in `manifest`, in its own chat template."""
    from safescale.inference.llama_engine import LlamaEngine
    from safescale.prompts import Renderer

    engine = LlamaEngine(
        manifest["path"],
        n_ctx=min(manifest["n_ctx"], max_ctx),
        threads=threads,
        n_batch=n_batch,
        n_gpu_layers=n_gpu_layers,
    )
    renderer = Renderer(manifest["prompt_style"], engine.llm)

    def generate(messages: list[dict[str, str]], max_tokens: int) -> str:
        return engine.generate_text(renderer.render_messages(messages), max_tokens)

    return generate


def run_agent(
    benchmark: str,
    chunks_path: str,
    model_manifest: str,
    retriever: str,
    bm25: str,
    chroma: str,
    rrf_k: int,
    settings: Mapping[str, Any],
    threads: int,
    n_batch: int,
    n_gpu_layers: int,
    out_transcripts: str,
) -> None:
    from safescale.agentic import AgentSettings
    from safescale.agentic import run_agent as agent_loop
    from safescale.retrieval.search import Retriever

    manifest = read_json(model_manifest)
    agent = AgentSettings(**{k: settings[k] for k in AgentSettings.__dataclass_fields__})
    chunks = {c.chunk_id: c for c in read_chunks(chunks_path)}
    search = Retriever(retriever, bm25, chroma, rrf_k, 1).search
    generate = _chat_generator(manifest, 4096, threads, n_batch, n_gpu_layers)
    transcripts = []
    questions = read_canonical(benchmark)
    for i, q in enumerate(questions, 1):
        transcripts.append(agent_loop(q, generate, search, lambda c: chunks[c].title, agent))
        print(f"[agent {manifest['name']}] {i}/{len(questions)}", flush=True)
    n_fb = sum(t["n_fallbacks"] > 0 for t in transcripts)
    print(f"questions with a fallback query: {n_fb}/{len(transcripts)}")
    write_jsonl(transcripts, out_transcripts)


def build_prompts(
    benchmark: str,
    chunks_path: str,
    rankings_path: str | None,
    model_manifest: str,
    condition: str,
    agentic_path: str | None,
    top_k: int,
    prompting: Mapping[str, Any],
    greedy_max_tokens: int,
    out_prompts: str,
) -> None:
    from safescale.contexts import Budget, build_prompt_records

    manifest = read_json(model_manifest)
    questions = read_canonical(benchmark)
    chunks = {c.chunk_id: c for c in read_chunks(chunks_path)}
    ranked = load_rankings(rankings_path, chunks) if rankings_path else {}
    agentic = None
    if agentic_path:
        agentic = {
            t["question_id"]: [chunks[c] for c in t["final_chunk_ids"]]
            for t in read_jsonl(agentic_path)
        }
    budget = Budget(
        window=manifest["n_ctx"],
        question_reserve=prompting["question_reserve_tokens"],
        max_new_tokens=greedy_max_tokens,
        margin=prompting["margin_tokens"],
        cap=prompting.get("max_context_cap_tokens"),
    )
    records = build_prompt_records(
        questions,
        manifest["name"],
        condition,
        _open_renderer(manifest),
        budget,
        ranked,
        top_k,
        agentic,
    )
    write_jsonl(records, out_prompts)


def run_inference(
    benchmark: str,
    prompts_path: str,
    model_manifest: str,
    config: Mapping[str, Any],
    threads: int,
    out_predictions: str,
    out_summary: str,
) -> None:
    from safescale.config import decoding as decoding_of
    from safescale.inference.llama_engine import LlamaEngine
    from safescale.inference.predict import parse_summary, predict_llama, run_key
    from safescale.inference.runner import run_resumable

    manifest = read_json(model_manifest)
    questions = {q.question_id: q for q in read_canonical(benchmark)}
    prompts = read_jsonl(prompts_path)
    dec = decoding_of(config)
    inf = config["inference"]
    longest = max((p["n_prompt_tokens"] for p in prompts), default=0)
    n_ctx = min(manifest["n_ctx"], longest + max(dec.greedy_max_tokens, dec.sample_max_tokens) + 8)
    engine = None
    if inf["backend"] == "openai":
        from safescale.inference.openai_backend import backend_from_config, predict_openai

        backend = backend_from_config(config, manifest.get("served_model") or manifest["name"])
        key = run_key(
            prompts, f"{manifest['sha256']}@{inf['openai']['base_url']}", dec, config["seed"]
        )

        def predict(q, prompt):
            return predict_openai(backend, q, prompt, dec, config["seed"], inf["on_error"])

    else:
        if any(p["status"] == "ok" for p in prompts):
            engine = LlamaEngine(
                manifest["path"],
                n_ctx=max(n_ctx, 64),
                threads=threads,
                n_batch=inf["n_batch"],
                n_gpu_layers=inf["n_gpu_layers"],
            )
        key = run_key(prompts, manifest["sha256"], dec, config["seed"])

        def predict(q, prompt):
            return predict_llama(engine, q, prompt, dec, config["seed"], inf["on_error"])

    t0 = time.time()
    counts = run_resumable(
        ((questions[p["question_id"]], p) for p in prompts),
        out_predictions,
        key,
        predict,
        label=f"{manifest['name']}/{prompts[0]['condition']}",
    )
    summary = parse_summary(read_jsonl(out_predictions))
    summary.update(
        counts,
        model=manifest["name"],
        condition=prompts[0]["condition"],
        seconds=round(time.time() - t0, 2),
    )
    if engine is not None:
        summary["engine"] = engine.stats.__dict__
    print(json.dumps(summary))
    write_json(summary, out_summary)


def summarize_parsing(
    summaries: Sequence[str], predictions: Sequence[str], out_table: str, out_unparsed: str
) -> None:
    """Parse rate, NULLs, skips and errors per (model, condition); unparsed outputs for review."""
    import pandas as pd

    rows = [read_json(p) for p in summaries]
    cols = [
        "model",
        "condition",
        "n_questions",
        "n_ok",
        "n_skipped",
        "n_error",
        "greedy_null",
        "greedy_parse_rate",
        "sample_null",
        "sample_parse_rate",
        "seconds",
    ]
    table = pd.DataFrame(rows)[cols]
    table.to_csv(out_table, index=False)
    print(table.to_string(index=False))
    unparsed = []
    for path in predictions:
        for rec in read_jsonl(path):
            if rec["status"] != "ok":
                continue
            outputs = [("greedy", rec["greedy"])] + [
                (f"sample_{i}", s) for i, s in enumerate(rec["samples"])
            ]
            unparsed += [
                {
                    "model": rec["model"],
                    "condition": rec["condition"],
                    "question_id": rec["question_id"],
                    "output": which,
                    "raw": out["raw"],
                }
                for which, out in outputs
                if out["letter"] is None
            ]
    pd.DataFrame(unparsed, columns=["model", "condition", "question_id", "output", "raw"]).to_csv(
        out_unparsed, index=False
    )


def judge_predictions(
    benchmark: str,
    predictions: str,
    judge_manifest: str | None,
    config: Mapping[str, Any],
    threads: int,
    out_predictions: str,
    out_summary: str,
) -> None:
    """Copy predictions, re-parsing NULL outputs with the judge model when one is set."""
    from safescale.inference.judge import judge_records
    from safescale.inference.predict import parse_summary

    records = read_jsonl(predictions)
    stats = {"judge": None, "outputs_judged": 0, "outputs_recovered": 0}
    if judge_manifest:
        manifest = read_json(judge_manifest)
        inf = config["inference"]
        generate = _chat_generator(manifest, 2048, threads, inf["n_batch"], inf["n_gpu_layers"])

        def ask(messages: list[dict[str, str]]) -> str:
            return generate(messages, inf["judge_max_tokens"])

        questions = {q.question_id: q for q in read_canonical(benchmark)}
        records, counts = judge_records(records, questions, ask)
        stats = {"judge": manifest["name"], **counts}
    write_jsonl(records, out_predictions)
    summary = {**parse_summary(records), **stats}
    print(json.dumps(summary))
    write_json(summary, out_summary)
