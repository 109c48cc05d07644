"""The printed report: raw throughput, then per (model, condition) timings and ratios."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from safescale.perf.measure import NAIVE_BASELINE
from safescale.perf.timing import Timing

# Targets printed next to the figures (never asserted: the machine is shared).
TARGET_SC_SPEEDUP = 5.0  # naive / ours
TARGET_E2E_OVER_BOUND = 1.5  # ours / lower bound


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
