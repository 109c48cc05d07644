"""Stages of workflow/rules/prompts.smk: agentic-RAG transcripts, prompts per condition."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from safescale.data.benchmark import read_canonical
from safescale.jsonio import read_json, read_jsonl, write_jsonl
from safescale.retrieval.chunking import read_chunks


def _open_renderer(manifest: Mapping[str, Any]):
    from llama_cpp import Llama

    from safescale.data.models import verify_model_file
    from safescale.prompting.templates import Renderer

    vocab = Llama(verify_model_file(manifest), vocab_only=True, verbose=False)
    return Renderer(manifest["prompt_style"], vocab)


def run_agent(
    *,
    benchmark: str,
    chunks: str,
    model: str,
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
    """One transcript per question: the agent model's queries, rounds and chosen chunks."""
    from safescale.inference.llama_engine import chat_generator
    from safescale.prompting.agentic import AgentSettings, agent_transcript
    from safescale.retrieval.search import Retriever

    manifest = read_json(model)
    agent = AgentSettings(**{k: settings[k] for k in AgentSettings.__dataclass_fields__})
    by_id = {c.chunk_id: c for c in read_chunks(chunks)}
    search = Retriever(retriever, bm25, chroma, rrf_k, 1).search
    generate = chat_generator(
        manifest, max_ctx=4096, threads=threads, n_batch=n_batch, n_gpu_layers=n_gpu_layers
    )
    transcripts = []
    questions = read_canonical(benchmark)
    for i, q in enumerate(questions, 1):
        transcripts.append(agent_transcript(q, generate, search, lambda c: by_id[c].title, agent))
        print(f"[agent {manifest['name']}] {i}/{len(questions)}", flush=True)
    n_fb = sum(t["n_fallbacks"] > 0 for t in transcripts)
    print(f"questions with a fallback query: {n_fb}/{len(transcripts)}")
    write_jsonl(transcripts, out_transcripts)


def build_prompts(
    *,
    benchmark: str,
    chunks: str,
    rankings: str | None,
    model: str,
    condition: str,
    agentic: str | None,
    top_k: int,
    prompting: Mapping[str, Any],
    greedy_max_tokens: int,
    out_prompts: str,
) -> None:
    """The prompt of every question under one condition, or a skip record with its reason."""
    from safescale.prompting.contexts import Budget, build_prompt_records
    from safescale.retrieval.search import load_rankings

    manifest = read_json(model)
    questions = read_canonical(benchmark)
    by_id = {c.chunk_id: c for c in read_chunks(chunks)}
    ranked = load_rankings(rankings, by_id) if rankings else {}
    agent_chunks = None
    if agentic:
        agent_chunks = {
            t["question_id"]: [by_id[c] for c in t["final_chunk_ids"]] for t in read_jsonl(agentic)
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
        agent_chunks,
    )
    write_jsonl(records, out_prompts)
