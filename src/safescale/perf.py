"""Speed benchmark of the inference engine on a fixed slice of real prompts.

For each model it measures, in one process and one run (so that the ratios
compare numbers taken under the same machine load):

(a) raw llama.cpp throughput: prompt tokens/s (one evaluation of a ~500-token
    prompt) and decode tokens/s (single-token evaluations);
(b) end-to-end seconds per question and condition of `LlamaEngine.answer`
    (greedy + letter probabilities + n self-consistency samples);
(c) our self-consistency cost (shared prompt evaluation + the sampling part of
    `answer`) against a naive baseline: n independent `create_completion` calls,
    each after `llm.reset()` so no KV/prefix cache is reused;
(d) end-to-end time against a lower bound: the raw llama.cpp time of the same
    prompt tokens + evaluated decode tokens at the raw single-token time, timed
    next to each answer (and, for reference, the same counts over (a)'s rates).

Every timing is kept on the wall clock and on process CPU time. See
docs/BENCHMARKS.md for the figures and how to read them.

Usage: python -m safescale.perf --config config/config.yaml [--questions N]
       [--models m1,m2] [--conditions c1,c2] [--out results/bench/bench.json]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from safescale import conditions as C
from safescale.data.question import Question
from safescale.inference.llama_engine import Decoding, EngineStats, LlamaEngine
from safescale.inference.parsing import letter_is_final
from safescale.inference.predict import sample_seeds

# Targets printed next to the figures (never asserted: the machine is shared).
TARGET_SC_SPEEDUP = 5.0  # naive / ours
TARGET_E2E_OVER_BOUND = 1.5  # ours / lower bound

DEFAULT_CONDITIONS = (C.CLOSED_BOOK, C.CLEAN_EVIDENCE)
NEEDS_RANKINGS = {*C.RETRIEVAL_TOP_K, C.PADDED_TOP_1, C.MAX_CONTEXT}
NAIVE_BASELINE = (
    "n independent llm.create_completion(prompt_tokens, temperature=T, top_k=0, top_p=1.0, "
    "min_p=0.0, max_tokens=sample_max_tokens, seed=s) calls on the same Llama, each after "
    "llm.reset(): no KV or prefix cache is reused, every call re-evaluates the whole prompt"
)


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
    naive: bool = True


# --- inputs -----------------------------------------------------------------
def _resolve(path: str | Path) -> Path:
    """A config path: as given (relative to the working directory) or under the repo root."""
    from safescale.config import ROOT

    p = Path(path).expanduser()
    return p if p.is_absolute() or p.exists() else ROOT / p


def load_questions(config: Mapping[str, Any], n: int, conditions: Sequence[str]) -> list[Question]:
    """The first n questions of the pipeline's slice (same seeded shuffle as prepare_benchmark)."""
    from safescale.data.benchmark import ColumnMapping, load_benchmark
    from safescale.stages.data import required_evidence

    b = config["benchmark"]
    questions = load_benchmark(
        _resolve(b["path"]),
        ColumnMapping.from_config(b.get("columns") or {}),
        b.get("format", "auto"),
        required_evidence(conditions),
    )
    chosen = list(questions)
    if b.get("shuffle"):
        random.Random(config["seed"]).shuffle(chosen)
    if b.get("limit"):
        chosen = chosen[: b["limit"]]
    return chosen[:n]


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


# --- measurements -----------------------------------------------------------
# Every timing is kept on two clocks: wall (what a user waits) and process CPU
# time (with threads=1 llama.cpp computes on the calling thread, so CPU time is
# far less sensitive to other jobs on a shared machine). Ratios use the same clock.
CLOCKS = ("wall", "cpu")
Timing = dict[str, float]


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(t0: tuple[float, float]) -> Timing:
    wall, cpu = _now()
    return {"wall": wall - t0[0], "cpu": cpu - t0[1]}


def _zero() -> Timing:
    return dict.fromkeys(CLOCKS, 0.0)


def _add(a: Timing, b: Timing) -> Timing:
    return {c: a[c] + b[c] for c in CLOCKS}


def _scale(a: Timing, k: float) -> Timing:
    return {c: a[c] * k for c in CLOCKS}


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def _ratios(a: Timing, b: Timing) -> Timing:
    return {c: _ratio(a[c], b[c]) for c in CLOCKS}


def _sync(llm: Any) -> None:
    import llama_cpp

    llama_cpp.llama_synchronize(llm._ctx.ctx)


def _eval_timed(llm: Any, tokens: Sequence[int]) -> Timing:
    t0 = _now()
    llm.eval(tokens)
    _sync(llm)
    return _since(t0)


def _decode_timed(llm: Any, pool: Sequence[int], n: int) -> Timing:
    """n single-token evaluations (tokens cycled from `pool`) after the cached ones."""
    t0 = _now()
    for i in range(n):
        llm.eval([pool[i % len(pool)]])
        _sync(llm)
    return _since(t0)


def raw_throughput(llm: Any, tokens: Sequence[int], n_decode: int, repeats: int) -> dict:
    """(a) llama.cpp alone: one prompt evaluation, then n_decode single-token evaluations.

    One untimed warm-up pass first (weights paged in, buffers allocated); the
    figures are the median over `repeats` passes, the runs are kept.
    """
    tokens = list(tokens)
    pool = tokens[1:] or tokens
    llm.reset()
    _eval_timed(llm, tokens)
    runs: dict[str, list[Timing]] = {"prompt": [], "decode": []}
    for _ in range(repeats):
        llm.reset()
        runs["prompt"].append(_eval_timed(llm, tokens))
        runs["decode"].append(_decode_timed(llm, pool, n_decode))
    llm.reset()
    tps = {
        kind: [{c: _ratio(n, t[c]) for c in CLOCKS} for t in runs[kind]]
        for kind, n in (("prompt", len(tokens)), ("decode", n_decode))
    }
    return {
        "prompt_tokens": len(tokens),
        "decode_tokens": n_decode,
        "repeats": repeats,
        "prompt_tps": {c: statistics.median(r[c] for r in tps["prompt"]) for c in CLOCKS},
        "decode_tps": {c: statistics.median(r[c] for r in tps["decode"]) for c in CLOCKS},
        "prompt_tps_runs": tps["prompt"],
        "decode_tps_runs": tps["decode"],
    }


def raw_prompt(prompt_tokens: Sequence[Sequence[int]], n: int) -> list[int]:
    """A ~n-token prompt of realistic text: the slice's prompts concatenated and cycled."""
    first, *rest = prompt_tokens
    stream = list(first)
    pool = [t for toks in [first, *rest] for t in toks[1:]] or list(first)
    while len(stream) < n:
        stream += pool
    return stream[:n]


def paired_raw_cost(llm: Any, tokens: Sequence[int], n_decode: int) -> tuple[Timing, Timing]:
    """Raw llama.cpp cost of this very prompt, measured right next to its `answer` call.

    Returns (one evaluation of `tokens`, one single-token evaluation after it,
    averaged over n_decode). Pairing makes the bound of (d) follow the load of
    the moment and the prompt's own length.
    """
    tokens = list(tokens)
    llm.reset()
    prompt = _eval_timed(llm, tokens)
    per_token = _scale(_decode_timed(llm, tokens[1:] or tokens, n_decode), 1 / max(1, n_decode))
    llm.reset()
    return prompt, per_token


def naive_self_consistency(
    llm: Any, tokens: Sequence[int], seeds: Sequence[int], decoding: Decoding
) -> tuple[Timing, int]:
    """(c) baseline: time and completion tokens of independent, cache-free sampling calls."""
    s = decoding.sampling
    completion_tokens = 0
    t0 = _now()
    for seed in seeds:
        llm.reset()  # n_tokens = 0: generate() finds no prefix to reuse
        out = llm.create_completion(
            list(tokens),
            temperature=s.temperature,
            top_k=0,
            top_p=1.0,
            min_p=0.0,
            max_tokens=decoding.sample_max_tokens,
            seed=seed % 2**32,
        )
        completion_tokens += out["usage"]["completion_tokens"]
    spent = _since(t0)
    llm.reset()
    return spent, completion_tokens


@contextmanager
def _instrument(engine: LlamaEngine, names: Sequence[str]) -> Iterator[dict[str, Timing]]:
    """Time the engine's own steps inside `answer` (instance attributes, removed after)."""
    spent = {n: _zero() for n in names}
    for name in names:
        method = getattr(engine, name)

        def timed(*args: Any, _method: Any = method, _name: str = name, **kw: Any) -> Any:
            t0 = _now()
            try:
                return _method(*args, **kw)
            finally:
                spent[_name] = _add(spent[_name], _since(t0))

        setattr(engine, name, timed)
    try:
        yield spent
    finally:
        for name in names:
            delattr(engine, name)


def time_answer(
    engine: LlamaEngine,
    tokens: list[int],
    letters: tuple[str, ...],
    decoding: Decoding,
    seeds: list[int],
) -> dict:
    """(b) one `engine.answer`, with its prompt, greedy and sampling parts.

    Our self-consistency cost is everything but the greedy decode: the shared
    prompt evaluation, the letter probabilities and the sample tree.
    """
    before = replace(engine.stats)
    with _instrument(engine, ("prime", "greedy", "sample_tree")) as parts:
        t0 = _now()
        out = engine.answer(
            tokens, letters, decoding, seeds, is_final=lambda text: letter_is_final(text, letters)
        )
        total = _since(t0)
    return {
        "answer": total,
        "prime": parts["prime"],
        "greedy": parts["greedy"],
        "sample_tree": parts["sample_tree"],
        "sc": {c: total[c] - parts["greedy"][c] for c in CLOCKS},
        "decode_steps": engine.stats.decode_steps - before.decode_steps,
        "greedy_tokens": len(out["greedy"].tokens),
        "sample_tokens": sum(len(g.tokens) for g in out["samples"]),
    }


def _sum(rows: Sequence[dict], key: str) -> Timing:
    total = _zero()
    for r in rows:
        total = _add(total, r[key])
    return total


def summarize(rows: Sequence[dict], naive: bool) -> dict:
    """Totals and ratios over a set of per-prompt rows."""
    answer = _sum(rows, "answer")
    out = {
        "n_prompts": len(rows),
        "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
        "decode_steps": sum(r["decode_steps"] for r in rows),
        "answer": answer,
        "per_question": _scale(answer, 1 / max(1, len(rows))),
        "sc": _sum(rows, "sc"),
        "bound": _sum(rows, "bound"),
        "bound_a": _sum(rows, "bound_a"),
    }
    out["e2e_over_bound"] = _ratios(answer, out["bound"])
    out["e2e_over_bound_a"] = _ratios(answer, out["bound_a"])
    if naive:
        out["naive"] = _sum(rows, "naive")
        out["naive_over_ours"] = _ratios(out["naive"], out["sc"])
    return out


def bench_model(
    name: str,
    model_path: str | Path,
    prompts: Sequence[dict],
    questions: Sequence[Question],
    decoding: Decoding,
    seed: int,
    settings: BenchSettings,
    log: Any = None,
) -> dict:
    """All four measurements for one model on its prompt records."""
    by_id = {q.question_id: q for q in questions}
    ok = [p for p in prompts if p["status"] == "ok"]
    if not ok:
        raise ValueError(f"{name}: no runnable prompt among {len(prompts)} records")
    longest = max(p["n_prompt_tokens"] for p in ok)
    new = max(decoding.greedy_max_tokens, decoding.sample_max_tokens)
    raw_n = min(settings.raw_prompt_tokens, settings.n_batch)
    n_ctx = max(
        longest + new + settings.paired_decode_tokens + 8, raw_n + settings.raw_decode_tokens + 8
    )
    engine = LlamaEngine(
        model_path, n_ctx=n_ctx, threads=settings.threads, n_batch=settings.n_batch
    )
    token_lists = [engine.tokenize(p["prompt"]) for p in ok]
    throughput = raw_throughput(
        engine.llm, raw_prompt(token_lists, raw_n), settings.raw_decode_tokens, settings.repeats
    )
    # Warm-up of the Python path (untimed), then fresh counters.
    q0 = by_id[ok[0]["question_id"]]
    engine.answer(token_lists[0], q0.letters, decoding, list(range(decoding.n_samples)))
    engine.stats = EngineStats()

    rows: list[dict] = []
    for i, (p, tokens) in enumerate(zip(ok, token_lists, strict=True)):
        q = by_id[p["question_id"]]
        seeds = sample_seeds(seed, name, p["condition"], q.question_id, decoding.n_samples)
        row: dict[str, Any] = {
            "condition": p["condition"],
            "question_id": q.question_id,
            "prompt_tokens": len(tokens),
        }
        naive = None
        if settings.naive and i % 2 == 1:  # alternate the order against drift
            naive = naive_self_consistency(engine.llm, tokens, seeds, decoding)
        raw_prompt_t, raw_token_t = paired_raw_cost(
            engine.llm, tokens, settings.paired_decode_tokens
        )
        row.update(time_answer(engine, tokens, q.letters, decoding, seeds))
        if settings.naive and naive is None:
            naive = naive_self_consistency(engine.llm, tokens, seeds, decoding)
        if naive is not None:
            row["naive"], row["naive_completion_tokens"] = naive
            row["naive_over_ours"] = _ratios(row["naive"], row["sc"])
        row["raw_prompt"] = raw_prompt_t
        row["raw_decode_per_token"] = raw_token_t
        row["bound"] = _add(raw_prompt_t, _scale(raw_token_t, row["decode_steps"]))
        row["bound_a"] = {
            c: len(tokens) / throughput["prompt_tps"][c]
            + row["decode_steps"] / throughput["decode_tps"][c]
            for c in CLOCKS
        }
        row["e2e_over_bound"] = _ratios(row["answer"], row["bound"])
        row["e2e_over_bound_a"] = _ratios(row["answer"], row["bound_a"])
        rows.append(row)
        if log:
            print(
                f"[bench {name}] {i + 1}/{len(ok)} {p['condition']}/{q.question_id}: "
                f"answer {row['answer']['wall']:.2f}s",
                file=log,
                flush=True,
            )
    conditions = list(dict.fromkeys(r["condition"] for r in rows))
    return {
        "model": name,
        "path": str(model_path),
        "n_ctx": n_ctx,
        "throughput": throughput,
        "skipped": [
            {"condition": p["condition"], "question_id": p["question_id"], "reason": p["reason"]}
            for p in prompts
            if p["status"] != "ok"
        ],
        "prompts": rows,
        "conditions": {
            c: summarize([r for r in rows if r["condition"] == c], settings.naive)
            for c in conditions
        },
        "overall": summarize(rows, settings.naive),
    }


# --- report -----------------------------------------------------------------
def _fmt(x: float | None, digits: int = 2) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 2) -> str:
    """Fixed-width columns; the first `left` are left-aligned, the rest right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join("-" * w for w in widths)
    fmt = [
        "  ".join(
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [header, *rows]
    ]
    return "\n".join([fmt[0], line, *fmt[1:]])


def _pair(t: Timing | None, digits: int = 1) -> str:
    """A ratio on both clocks: 'wall / cpu'."""
    if t is None:
        return "-"
    return f"{_fmt(t['wall'], digits)}x / {_fmt(t['cpu'], digits)}x"


def format_report(report: Mapping[str, Any]) -> str:
    """The printed tables: raw throughput, then per (model, condition) timings and ratios."""
    meta = report["meta"]
    raw = []
    for m in report["models"]:
        t = m["throughput"]
        raw.append(
            [
                m["model"],
                _fmt(t["prompt_tps"]["wall"], 1),
                _fmt(t["decode_tps"]["wall"], 1),
                _fmt(t["prompt_tps"]["cpu"], 1),
                _fmt(t["decode_tps"]["cpu"], 1),
                " ".join(_fmt(r["wall"], 0) for r in t["prompt_tps_runs"]),
                " ".join(_fmt(r["wall"], 0) for r in t["decode_tps_runs"]),
            ]
        )
    head_a = [
        "model",
        "prompt tok/s",
        "decode tok/s",
        "prompt (cpu)",
        "decode (cpu)",
        "prompt runs",
        "decode runs",
    ]
    rows = []
    for m in report["models"]:
        for cond, s in [*m["conditions"].items(), ("all", m["overall"])]:
            rows.append(
                [
                    m["model"],
                    cond,
                    str(s["n_prompts"]),
                    _fmt(s["prompt_tokens"] / s["n_prompts"], 0),
                    _fmt(s["decode_steps"] / s["n_prompts"], 0),
                    _fmt(s["per_question"]["wall"]),
                    _fmt(s["sc"]["wall"]),
                    _fmt(s["naive"]["wall"]) if "naive" in s else "-",
                    _pair(s.get("naive_over_ours")),
                    _fmt(s["bound"]["wall"]),
                    _pair(s["e2e_over_bound"], 2),
                    _pair(s["e2e_over_bound_a"], 2),
                ]
            )
    head_b = [
        "model",
        "condition",
        "n",
        "prompt tok",
        "decode steps",
        "e2e s/q",
        "SC ours s",
        "SC naive s",
        f"(c) naive/ours [>= {TARGET_SC_SPEEDUP:g}x]",
        "bound s",
        f"(d) e2e/bound [<= {TARGET_E2E_OVER_BOUND:g}x]",
        "e2e/bound(a)",
    ]
    load = meta["loadavg_start"], meta["loadavg_end"]
    return "\n".join(
        [
            f"safescale bench: {meta['n_questions']} question(s) x {len(meta['conditions'])} "
            f"condition(s), {meta['n_samples']} SC samples at T={meta['temperature']}, "
            f"threads={meta['threads']}, llama-cpp-python {meta['llama_cpp_version']}",
            f"load average (1 min): {_fmt(load[0][0])} at start, {_fmt(load[1][0])} at end, "
            f"{meta['cpu_count']} cores",
            "",
            "(a) raw llama.cpp throughput, median of runs (wall clock; cpu = process CPU time)",
            _table(head_a, raw, left=1),
            "",
            "(b) engine.answer seconds per question (e2e s/q) and totals per row; "
            "ratios as wall / cpu",
            _table(head_b, rows),
            "",
            "SC ours  = shared prompt eval + letter probs + sample tree (answer minus greedy).",
            "SC naive = " + NAIVE_BASELINE + ".",
            "bound    = raw llama.cpp time of the same prompt + decode steps x raw single-token "
            "time, timed next to each answer",
            "           (decode steps = engine.stats.decode_steps, which already counts the "
            "greedy evaluations).",
            "bound(a) = prompt tokens / (a) prompt tok/s + decode steps / (a) decode tok/s.",
        ]
    )


def run(
    config: Mapping[str, Any],
    models: Sequence[str] | None,
    conditions: Sequence[str] | None,
    settings: BenchSettings,
    results: Path = Path("results"),
    n_samples: int | None = None,
    log: Any = sys.stderr,
    model_paths: Mapping[str, str | Path] | None = None,
) -> dict:
    """The whole benchmark: every model on the same question slice and conditions.

    `model_paths` overrides where a model's GGUF is (default: the weights cache).
    """
    import llama_cpp

    from safescale.config import cache_dir, registry, selected_models
    from safescale.config import decoding as decoding_of
    from safescale.data.models import cached_model_path

    if models:
        known = registry(dict(config))
        unknown = [m for m in models if m not in known]
        if unknown:
            raise ValueError(f"models {unknown} are not in the registry; known: {sorted(known)}")
        specs = [known[m] for m in models]
    else:
        specs = [s for s in selected_models(dict(config)) if s.name in config["models"]]
    conditions = list(conditions or default_conditions(config, results))
    bad = [c for c in conditions if c not in C.ALL_CONDITIONS]
    if bad:
        raise ValueError(f"unknown conditions {bad}; known: {list(C.ALL_CONDITIONS)}")
    decoding = decoding_of(dict(config))
    if n_samples is not None:
        decoding = replace(decoding, n_samples=n_samples)
    questions = load_questions(config, settings.questions, conditions)
    meta = {
        "n_questions": len(questions),
        "question_ids": [q.question_id for q in questions],
        "conditions": conditions,
        "n_samples": decoding.n_samples,
        "temperature": decoding.sampling.temperature,
        "decoding": asdict(decoding),
        "settings": asdict(settings),
        "naive_baseline": NAIVE_BASELINE,
        "targets": {
            "naive_over_ours_at_least": TARGET_SC_SPEEDUP,
            "e2e_over_bound_at_most": TARGET_E2E_OVER_BOUND,
        },
        "threads": settings.threads,
        "llama_cpp_version": llama_cpp.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "loadavg_start": list(os.getloadavg()),
    }
    out_models = []
    for spec in specs:
        path = Path(
            (model_paths or {}).get(spec.name) or cached_model_path(spec, cache_dir(dict(config)))
        )
        if not path.exists():
            raise FileNotFoundError(
                f"model '{spec.name}' not fetched ({path}): run `make models` first"
            )
        prompts = build_prompts(
            config, spec.name, path, spec.prompt_style, spec.n_ctx, questions, conditions, results
        )
        out_models.append(
            bench_model(
                spec.name, path, prompts, questions, decoding, config["seed"], settings, log
            )
        )
    meta["loadavg_end"] = list(os.getloadavg())
    return {"meta": meta, "models": out_models}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m safescale.perf", description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--models", help="comma-separated registry names (default: config's)")
    parser.add_argument(
        "--conditions",
        help="comma-separated (default: closed_book,clean_evidence[,standard_rag if retrieved])",
    )
    parser.add_argument("--samples", type=int, help="SC samples (default: the config's)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="raw-throughput passes")
    parser.add_argument("--results", default="results", help="the workflow's results folder")
    parser.add_argument("--out", default="results/bench/bench.json")
    args = parser.parse_args(argv)

    from safescale.config import load_config
    from safescale.jsonio import write_json

    config = load_config(args.config)
    settings = BenchSettings(
        questions=args.questions,
        threads=args.threads,
        n_batch=config["inference"]["n_batch"],
        repeats=args.repeats,
    )

    def split(s: str | None) -> list[str] | None:
        return [x.strip() for x in s.split(",") if x.strip()] if s else None

    report = run(
        config,
        split(args.models),
        split(args.conditions),
        settings,
        Path(args.results),
        args.samples,
    )
    print(format_report(report))
    write_json(report, args.out)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
