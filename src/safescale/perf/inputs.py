"""What the benchmark runs on: its settings, the pipeline's question slice and the prompt
records built in-process exactly as the workflow's build_prompts rule builds them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safescale import conditions as C
from safescale.data.question import Question

DEFAULT_CONDITIONS = (C.CLOSED_BOOK, C.CLEAN_EVIDENCE)
NEEDS_RANKINGS = {*C.RETRIEVAL_TOP_K, C.PADDED_TOP_1, C.MAX_CONTEXT}


@dataclass(frozen=True)
class BenchSettings:
    """Knobs of one benchmark run."""

    questions: int = 3
    threads: int = 1
    n_batch: int = 512
    raw_prompt_tokens: int = 500
    raw_decode_tokens: int = 32
    repeats: int = 3
    paired_decode_tokens: int = 8
    strong: bool = True  # llama-cpp-python's prefix reuse (perf.strong)
    naive: bool = False  # cache-free calls: 20 prompt evaluations per question, slow


def _resolve(path: str | Path) -> Path:
    """A config path: as given (relative to the working directory) or under the repo root."""
    from safescale.config import ROOT

    p = Path(path).expanduser()
    return p if p.is_absolute() or p.exists() else ROOT / p


def load_questions(config: Mapping[str, Any], n: int, conditions: Sequence[str]) -> list[Question]:
    """The first n questions of the pipeline's slice (same seeded shuffle as prepare_benchmark)."""
    from safescale.data.benchmark import load_configured, select_configured

    b = config["benchmark"]
    return select_configured(load_configured(b, conditions, path=_resolve(b["path"])), config)[:n]


def retrieval_paths(config: Mapping[str, Any], results: Path) -> tuple[Path, Path]:
    """(rankings, chunks) the workflow writes for the configured retriever."""
    retriever = config["retrieval"]["retriever"]
    return results / "retrieval" / f"{retriever}.jsonl", results / "index" / "chunks.jsonl"


def default_conditions(config: Mapping[str, Any], results: Path) -> list[str]:
    """closed_book and clean_evidence; standard_rag too once the workflow has retrieved."""
    chosen = list(DEFAULT_CONDITIONS)
    if all(p.exists() for p in retrieval_paths(config, results)):
        chosen.append(C.STANDARD_RAG)
    return chosen


def build_prompts(
    config: Mapping[str, Any],
    model: str,
    model_path: str | Path,
    prompt_style: str,
    window: int,
    questions: Sequence[Question],
    conditions: Sequence[str],
    results: Path = Path("results"),
) -> list[dict]:
    """Prompt records (docs/FORMATS.md shape) built in-process, as build_prompts does."""
    from llama_cpp import Llama

    from safescale.jsonio import read_jsonl
    from safescale.prompting.contexts import Budget, build_prompt_records
    from safescale.prompting.templates import Renderer
    from safescale.retrieval.chunking import read_chunks
    from safescale.retrieval.search import load_rankings

    ranked: dict = {}
    chunks: dict = {}
    if any(c in NEEDS_RANKINGS or c == C.AGENTIC_RAG for c in conditions):
        rankings_path, chunks_path = retrieval_paths(config, results)
        missing = [str(p) for p in (rankings_path, chunks_path) if not p.exists()]
        if missing:
            raise FileNotFoundError(
                f"conditions {list(conditions)} need retrieval outputs {missing}: run the "
                "workflow's retrieval rules first (snakemake ... retrieve_all) or drop them"
            )
        chunks = {c.chunk_id: c for c in read_chunks(chunks_path)}
        ranked = load_rankings(str(rankings_path), chunks)
    agentic = None
    if C.AGENTIC_RAG in conditions:
        path = results / "agentic" / f"{model}.jsonl"
        if not path.exists():
            raise FileNotFoundError(f"agentic_rag needs the agent's transcripts {path}")
        agentic = {
            t["question_id"]: [chunks[c] for c in t["final_chunk_ids"]] for t in read_jsonl(path)
        }
    p = config["prompting"]
    budget = Budget(
        window=window,
        question_reserve=p["question_reserve_tokens"],
        max_new_tokens=config["decoding"]["greedy_max_tokens"],
        margin=p["margin_tokens"],
        cap=p.get("max_context_cap_tokens"),
    )
    renderer = Renderer(prompt_style, Llama(str(model_path), vocab_only=True, verbose=False))
    records: list[dict] = []
    for condition in conditions:
        records += build_prompt_records(
            questions,
            model,
            condition,
            renderer,
            budget,
            ranked,
            config["retrieval"]["top_k"],
            agentic,
        )
    return records
