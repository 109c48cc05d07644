"""Stages of workflow/rules/prompts.smk: agentic-RAG transcripts, prompts per condition."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
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
    """One transcript per question: what the agent read, searched, decided and chose."""
    from functools import partial

    from safescale.inference.llama_engine import chat_generator
    from safescale.prompting.agent_protocol import opening_messages, reply_complete
    from safescale.prompting.agentic import AgentSettings, agent_transcript
    from safescale.retrieval.search import Retriever

    manifest = read_json(model)
    agent = AgentSettings(**{k: settings[k] for k in AgentSettings.__dataclass_fields__})
    by_id = {c.chunk_id: c for c in read_chunks(chunks)}
    search = Retriever(retriever, bm25, chroma, rrf_k, 1).search
    generate = chat_generator(
        manifest,
        max_ctx=4096,
        threads=threads,
        n_batch=n_batch,
        n_gpu_layers=n_gpu_layers,
        reuse_prefix=True,
        is_final=partial(reply_complete, limit=agent.queries_per_round),
        opening=opening_messages(agent.queries_per_round),
    )
    transcripts = []
    questions = read_canonical(benchmark)
    for i, q in enumerate(questions, 1):
        generate.reset()  # one conversation per question; only the opening is shared
        t = agent_transcript(
            q, generate, search, by_id.__getitem__, agent, generate.clip, generate.usage
        )
        transcripts.append({"agent_model": manifest["name"], **t})
        print(
            f"[agent {manifest['name']}] {i}/{len(questions)} {q.question_id}: "
            f"{t['usable_rounds']}/{t['n_rounds']} usable rounds, stopped by {t['stopped_by']}, "
            f"evidence {t['evidence']}, {t['prompt_tokens_evaluated']} prompt + "
            f"{t['decode_tokens']} decode tokens",
            flush=True,
        )
    rounds = sum(t["n_rounds"] for t in transcripts)
    usable = sum(t["usable_rounds"] for t in transcripts)
    fallback = sum(t["evidence"] == "fallback" for t in transcripts)
    print(f"usable rounds: {usable}/{rounds}; fallback evidence: {fallback}/{len(transcripts)}")
    write_jsonl(transcripts, out_transcripts)


def summarize_agent(*, transcripts_of: Mapping[str, str], out_summary: str) -> None:
    """Per model under test: usable share, who stopped, fallback evidence and token cost
    of its agent (`transcripts_of`: model -> its agent's transcripts; one agent may
    plan for several models)."""
    from safescale.prompting.agentic import mostly_fallback_models, summarize_transcripts

    files = {path: read_jsonl(path) for path in sorted(set(transcripts_of.values()))}
    table = summarize_transcripts({m: files[path] for m, path in transcripts_of.items()})
    print(table.to_string(index=False))
    for name in mostly_fallback_models(table):
        print(f"WARNING: the agentic condition for model {name} mostly fell back")
    tmp = Path(f"{out_summary}.tmp")  # renamed when complete: never a half-written table
    table.to_csv(tmp, index=False)
    tmp.replace(out_summary)


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
