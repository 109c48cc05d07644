"""Two clocks for every timing of the benchmark, and llama.cpp calls timed on both.

Wall time is what a user waits; process CPU time (with threads=1 llama.cpp computes on
the calling thread) is far less sensitive to other jobs on a shared machine. Ratios
always use the same clock on both sides.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

CLOCKS = ("wall", "cpu")
Timing = dict[str, float]


def now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(t0: tuple[float, float]) -> Timing:
    wall, cpu = now()
    return {"wall": wall - t0[0], "cpu": cpu - t0[1]}


def zero_timing() -> Timing:
    return dict.fromkeys(CLOCKS, 0.0)


def add_timings(a: Timing, b: Timing) -> Timing:
    return {c: a[c] + b[c] for c in CLOCKS}


def scale_timing(a: Timing, k: float) -> Timing:
    return {c: a[c] * k for c in CLOCKS}


def safe_ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def timing_ratios(a: Timing, b: Timing) -> Timing:
    return {c: safe_ratio(a[c], b[c]) for c in CLOCKS}


def synchronize(llm: Any) -> None:
    import llama_cpp

    llama_cpp.llama_synchronize(llm._ctx.ctx)


def eval_timed(llm: Any, tokens: Sequence[int]) -> Timing:
    t0 = now()
    llm.eval(tokens)
    synchronize(llm)
    return since(t0)


def decode_timed(llm: Any, pool: Sequence[int], n: int) -> Timing:
    """n single-token evaluations (tokens cycled from `pool`) after the cached ones."""
    t0 = now()
    for i in range(n):
        llm.eval([pool[i % len(pool)]])
        synchronize(llm)
    return since(t0)


def sum_timings(rows: Sequence[dict], key: str) -> Timing:
    total = zero_timing()
    for r in rows:
        total = add_timings(total, r[key])
    return total
