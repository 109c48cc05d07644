"""The measurements of one model: (a) raw llama.cpp throughput, (b) end-to-end
`LlamaEngine.answer`, (c) our self-consistency against the strong baseline
(llama-cpp-python's prefix reuse, with and without early stop; perf.strong) and,
optionally, the naive cache-free one, (d) end-to-end against the raw lower bound
timed next to each answer."""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from safescale.data.question import Question
from safescale.inference.llama_engine import Decoding, EngineStats, LlamaEngine
from safescale.inference.parsing import letter_is_final
from safescale.inference.predict import sample_seeds
from safescale.perf.inputs import BenchSettings
from safescale.perf.strong import strong_self_consistency
from safescale.perf.timing import (
    CLOCKS,
    Timing,
    add_timings,
    decode_timed,
    eval_timed,
    now,
    safe_ratio,
    scale_timing,
    since,
    sum_timings,
    timing_ratios,
    zero_timing,
)

NAIVE_BASELINE = (
    "n independent llm.create_completion(prompt_tokens, temperature=T, top_k=0, top_p=1.0, "
    "min_p=0.0, max_tokens=sample_max_tokens, seed=s) calls on the same Llama, each after "
    "llm.reset(): no KV or prefix cache is reused, every call re-evaluates the whole prompt"
)


def raw_throughput(llm: Any, tokens: Sequence[int], n_decode: int, repeats: int) -> dict:
    """(a) llama.cpp alone: one prompt evaluation, then n_decode single-token evaluations.

    One untimed warm-up pass first (weights paged in, buffers allocated); the
    figures are the median over `repeats` passes, the runs are kept.
    """
    tokens = list(tokens)
    pool = tokens[1:] or tokens
    llm.reset()
    eval_timed(llm, tokens)
    runs: dict[str, list[Timing]] = {"prompt": [], "decode": []}
    for _ in range(repeats):
        llm.reset()
        runs["prompt"].append(eval_timed(llm, tokens))
        runs["decode"].append(decode_timed(llm, pool, n_decode))
    llm.reset()
    tps = {
        kind: [{c: safe_ratio(n, t[c]) for c in CLOCKS} for t in runs[kind]]
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
    prompt = eval_timed(llm, tokens)
    per_token = scale_timing(
        decode_timed(llm, tokens[1:] or tokens, n_decode), 1 / max(1, n_decode)
    )
    llm.reset()
    return prompt, per_token


def naive_self_consistency(
    llm: Any, tokens: Sequence[int], seeds: Sequence[int], decoding: Decoding
) -> tuple[Timing, int]:
    """(c) baseline: time and completion tokens of independent, cache-free sampling calls."""
    s = decoding.sampling
    completion_tokens = 0
    t0 = now()
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
    spent = since(t0)
    llm.reset()
    return spent, completion_tokens


def strong_rows(
    llm: Any,
    tokens: Sequence[int],
    seeds: Sequence[int],
    decoding: Decoding,
    letters: tuple[str, ...],
) -> dict[str, Any]:
    """(c) the strong baseline on one prompt, without and with the early stop."""
    plain, plain_evals, _ = strong_self_consistency(llm, tokens, seeds, decoding)
    stop, stop_evals, _ = strong_self_consistency(
        llm, tokens, seeds, decoding, is_final=lambda text: letter_is_final(text, letters)
    )
    return {
        "strong": plain,
        "strong_evals": plain_evals,
        "strong_stop": stop,
        "strong_stop_evals": stop_evals,
    }


@contextmanager
def _instrument(
    engine: LlamaEngine, names: Sequence[str]
) -> Iterator[tuple[dict[str, Timing], dict[str, int]]]:
    """Time and count the decode steps of the engine's own steps inside `answer`
    (instance attributes, removed after)."""
    spent = {n: zero_timing() for n in names}
    steps = dict.fromkeys(names, 0)
    for name in names:
        method = getattr(engine, name)

        def timed(*args: Any, _method: Any = method, _name: str = name, **kw: Any) -> Any:
            t0, steps0 = now(), engine.stats.decode_steps
            try:
                return _method(*args, **kw)
            finally:
                spent[_name] = add_timings(spent[_name], since(t0))
                steps[_name] += engine.stats.decode_steps - steps0

        setattr(engine, name, timed)
    try:
        yield spent, steps
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
    with _instrument(engine, ("prime", "greedy", "sample_tree")) as (parts, steps):
        t0 = now()
        out = engine.answer(
            tokens, letters, decoding, seeds, is_final=lambda text: letter_is_final(text, letters)
        )
        total = since(t0)
    return {
        "answer": total,
        "prime": parts["prime"],
        "greedy": parts["greedy"],
        "sample_tree": parts["sample_tree"],
        "sc": {c: total[c] - parts["greedy"][c] for c in CLOCKS},
        "decode_steps": engine.stats.decode_steps - before.decode_steps,
        "tree_steps": steps["sample_tree"],
        "greedy_tokens": len(out["greedy"].tokens),
        "sample_tokens": sum(len(g.tokens) for g in out["samples"]),
    }


def summarize(rows: Sequence[dict], naive: bool) -> dict:
    """Totals and ratios over a set of per-prompt rows."""
    answer = sum_timings(rows, "answer")
    out = {
        "n_prompts": len(rows),
        "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
        "decode_steps": sum(r["decode_steps"] for r in rows),
        "tree_steps": sum(r["tree_steps"] for r in rows),
        "answer": answer,
        "per_question": scale_timing(answer, 1 / max(1, len(rows))),
        "sc": sum_timings(rows, "sc"),
        "bound": sum_timings(rows, "bound"),
        "bound_a": sum_timings(rows, "bound_a"),
    }
    out["e2e_over_bound"] = timing_ratios(answer, out["bound"])
    out["e2e_over_bound_a"] = timing_ratios(answer, out["bound_a"])
    # The per-answer target is on each answer, so the worst one is kept too.
    out["max_e2e_over_bound"] = {c: max(r["e2e_over_bound"][c] for r in rows) for c in CLOCKS}
    for key in ("strong", "strong_stop"):
        if all(key in r for r in rows):
            out[key] = sum_timings(rows, key)
            out[f"{key}_evals"] = sum(r[f"{key}_evals"] for r in rows)
            out[f"{key}_over_ours"] = timing_ratios(out[key], out["sc"])
    if naive:
        out["naive"] = sum_timings(rows, "naive")
        out["naive_over_ours"] = timing_ratios(out["naive"], out["sc"])
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
        before = i % 2 == 1  # baselines before `answer` on odd prompts: against drift
        if settings.naive and before:
            naive = naive_self_consistency(engine.llm, tokens, seeds, decoding)
        if settings.strong and before:
            row.update(strong_rows(engine.llm, tokens, seeds, decoding, q.letters))
        raw_prompt_t, raw_token_t = paired_raw_cost(
            engine.llm, tokens, settings.paired_decode_tokens
        )
        row.update(time_answer(engine, tokens, q.letters, decoding, seeds))
        if settings.strong and not before:
            row.update(strong_rows(engine.llm, tokens, seeds, decoding, q.letters))
        if settings.strong:
            for key in ("strong", "strong_stop"):
                row[f"{key}_over_ours"] = timing_ratios(row[key], row["sc"])
        if settings.naive and naive is None:
            naive = naive_self_consistency(engine.llm, tokens, seeds, decoding)
        if naive is not None:
            row["naive"], row["naive_completion_tokens"] = naive
            row["naive_over_ours"] = timing_ratios(row["naive"], row["sc"])
        row["raw_prompt"] = raw_prompt_t
        row["raw_decode_per_token"] = raw_token_t
        row["bound"] = add_timings(raw_prompt_t, scale_timing(raw_token_t, row["decode_steps"]))
        row["bound_a"] = {
            c: len(tokens) / throughput["prompt_tps"][c]
            + row["decode_steps"] / throughput["decode_tps"][c]
            for c in CLOCKS
        }
        row["e2e_over_bound"] = timing_ratios(row["answer"], row["bound"])
        row["e2e_over_bound_a"] = timing_ratios(row["answer"], row["bound_a"])
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
