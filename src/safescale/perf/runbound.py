"""A physical bound for a whole finished run, and how far the run's inference jobs are from it.

bound = unique prompt tokens / peak prompt tok/s + decode steps / peak decode tok/s.
Unique prompt tokens count each distinct token prefix of the model's prompts once
(a token trie): what any engine must evaluate, even one that shares the system
prompt between questions and conditions. Decode steps are the single-token
evaluations the engine recorded (`engine.decode_steps` of each job's summary).
Both peaks (the best of the raw-throughput passes) are measured in the same
bench run at the jobs' thread count. The run's time is each inference job's wall
time from Snakemake's benchmark file (interpreter start, model load, every
question), and, tighter, the job's own question loop (`seconds` of its summary);
on a shared machine wall time is mostly waiting, so both also come on the CPU
clock (`process_cpu_seconds`, `cpu_seconds` of the summary) against the bound at
the peaks' CPU rates. The agent's planning calls (rule run_agent) are not
inference jobs and are left out.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safescale import conditions as C
from safescale.jsonio import read_json, read_jsonl


@dataclass(frozen=True)
class Job:
    """One finished condition of an inference job of the run directory."""

    model: str
    condition: str
    n_ok: int
    n_resumed: int
    decode_steps: int
    loop_s: float
    job_s: float  # NaN when Snakemake's benchmark file is missing
    loop_cpu_s: float  # CPU clocks from the job's summary (NaN in older summaries)
    job_cpu_s: float
    prompts: tuple[str, ...]  # the answered prompts' text
    job: str = ""  # the Snakemake job: the condition, or the ranked-evidence job


def unique_prefix_tokens(sequences: Iterable[Sequence[int]]) -> int:
    """Nodes of the token trie of `sequences`: each distinct prefix counted once."""
    root: dict[int, dict] = {}
    count = 0
    for seq in sequences:
        node = root
        for tok in seq:
            child = node.get(tok)
            if child is None:
                child = node[tok] = {}
                count += 1
            node = child
    return count


def token_bound_s(
    *, prompt_tokens: int, decode_tokens: int, prompt_tps: float, decode_tps: float
) -> float:
    """Seconds to evaluate the tokens at the peak throughputs (NaN without a throughput)."""
    if not (prompt_tps > 0 and decode_tps > 0):
        return math.nan
    return prompt_tokens / prompt_tps + decode_tokens / decode_tps


def _peak_bound(peak: Mapping[str, float], prompt_tokens: int, steps: int, clock: str) -> float:
    return token_bound_s(
        prompt_tokens=prompt_tokens,
        decode_tokens=steps,
        prompt_tps=peak[f"prompt_tps_{clock}"],
        decode_tps=peak[f"decode_tps_{clock}"],
    )


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 and math.isfinite(a) else math.nan


def read_job_seconds(path: Path) -> float:
    """Mean wall seconds (column `s`) of a Snakemake benchmark file; NaN if it is missing.

    Its `cpu_time` is not used: Snakemake samples it every 0.5 s for 15 s, then every
    30 s, so it misses up to 30 s at the end of a job.
    """
    if not path.exists():
        return math.nan
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if not rows or "s" not in rows[0]:
        raise ValueError(f"{path}: not a Snakemake benchmark file (no column 's')")
    try:
        values = [float(r["s"]) for r in rows]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: column 's' is not a number: {exc}") from None
    return sum(values) / len(values)


def read_jobs(run_dir: Path) -> list[Job]:
    """Every finished inference job under `run_dir` (the workflow's results folder)."""
    jobs = []
    order = {c: i for i, c in enumerate(C.ALL_CONDITIONS)}
    found = sorted(
        (run_dir / "predictions").glob("*/*.summary.json"),
        key=lambda p: (p.parent.name, order.get(p.name.split(".")[0], len(order))),
    )
    for summary_path in found:
        model, condition = summary_path.parent.name, summary_path.name.split(".")[0]
        summary = read_json(summary_path)
        engine = summary.get("engine")
        if engine is None or "decode_steps" not in engine:
            raise ValueError(
                f"{summary_path}: no 'engine' counters (an openai-backend run or an old "
                "summary): the token bound needs the in-process engine's decode steps"
            )
        prompts_path = run_dir / "prompts" / model / f"{condition}.jsonl"
        if not prompts_path.exists():
            raise FileNotFoundError(f"{prompts_path}: the prompts of {summary_path} are missing")
        prompts = tuple(p["prompt"] for p in read_jsonl(prompts_path) if p["status"] == "ok")
        job = summary.get("job", condition)  # a ranked-evidence job answers several
        job_s = read_job_seconds(run_dir.parent / "benchmarks" / "inference" / model / f"{job}.tsv")
        jobs.append(
            Job(
                model=model,
                condition=condition,
                n_ok=int(summary["n_ok"]),
                n_resumed=int(summary.get("resumed", 0)),
                decode_steps=int(engine["decode_steps"]),
                loop_s=float(summary["seconds"]),
                job_s=job_s,
                job=job,
                loop_cpu_s=float(summary.get("cpu_seconds", math.nan)),
                job_cpu_s=float(summary.get("process_cpu_seconds", math.nan)),
                prompts=prompts,
            )
        )
    return jobs


def bound_rows(
    jobs: Sequence[Job],
    tokens: Mapping[tuple[str, str], Sequence[Sequence[int]]],
    peaks: Mapping[str, Mapping[str, float]],
) -> list[dict[str, Any]]:
    """One row per job and one 'all' row per model: token counts, bound and ratios.

    `tokens[(model, condition)]` are the job's tokenized prompts; `peaks[model]` has
    `prompt_tps_wall`, `decode_tps_wall` and their `_cpu` twins. The 'all' row
    deduplicates prompt prefixes across the model's conditions too.
    """
    rows: list[dict[str, Any]] = []
    for model in dict.fromkeys(j.model for j in jobs):
        mine = [j for j in jobs if j.model == model]
        peak = peaks[model]
        groups = [([j], j.condition) for j in mine] + [(mine, "all")]
        for group, label in groups:
            seqs = [s for j in group for s in tokens[(model, j.condition)]]
            unique = unique_prefix_tokens(seqs)
            total = sum(len(s) for s in seqs)
            steps = sum(j.decode_steps for j in group)
            bound = _peak_bound(peak, unique, steps, "wall")
            bound_cpu = _peak_bound(peak, unique, steps, "cpu")
            no_sharing = _peak_bound(peak, total, steps, "wall")
            no_sharing_cpu = _peak_bound(peak, total, steps, "cpu")
            loop_s = sum(j.loop_s for j in group)
            # a job that answered several conditions counts once, and not per condition
            jobs_once = {j.job or j.condition: j for j in group}.values()
            shared = len(group) == 1 and group[0].job not in ("", group[0].condition)
            job_s = math.nan if shared else sum(j.job_s for j in jobs_once)  # NaN: file missing
            loop_cpu_s = sum(j.loop_cpu_s for j in group)
            job_cpu_s = math.nan if shared else sum(j.job_cpu_s for j in jobs_once)
            rows.append(
                {
                    "model": model,
                    "condition": label,
                    "n_answered": sum(j.n_ok for j in group),
                    "n_resumed": sum(j.n_resumed for j in group),
                    "prompt_tokens": total,
                    "unique_prompt_tokens": unique,
                    "decode_steps": steps,
                    **peak,
                    "bound_s": bound,
                    "bound_no_sharing_s": no_sharing,
                    "bound_cpu_s": bound_cpu,
                    "bound_no_sharing_cpu_s": no_sharing_cpu,
                    "loop_s": loop_s,
                    "job_s": job_s,
                    "loop_cpu_s": loop_cpu_s,
                    "job_cpu_s": job_cpu_s,
                    "loop_over_bound": _ratio(loop_s, bound),
                    "job_over_bound": _ratio(job_s, bound),
                    "job_over_bound_no_sharing": _ratio(job_s, no_sharing),
                    "loop_cpu_over_bound_cpu": _ratio(loop_cpu_s, bound_cpu),
                    "job_cpu_over_bound_cpu": _ratio(job_cpu_s, bound_cpu),
                    "job_cpu_over_bound_no_sharing_cpu": _ratio(job_cpu_s, no_sharing_cpu),
                }
            )
    return rows


def peak_throughput(throughput: Mapping[str, Any]) -> dict[str, float]:
    """The best pass of a raw-throughput measurement, on each clock."""
    return {
        f"{kind}_tps_{clock}": max(r[clock] for r in throughput[f"{kind}_tps_runs"])
        for kind in ("prompt", "decode")
        for clock in ("wall", "cpu")
    }


def run_bound(
    run_dir: Path,
    threads: int,
    settings: Any,
    measured: Mapping[str, Mapping[str, Any]],
    log: Any = None,
) -> dict[str, Any]:
    """The bound table of the run under `run_dir`, with peaks measured now at `threads`.

    `measured[model]` reuses a raw-throughput measurement this bench run already made at
    the same thread count; other models of the run are measured here.
    """
    from llama_cpp import Llama

    from safescale.data.models import verify_model_file
    from safescale.perf.measure import raw_prompt, raw_throughput
    from safescale.prompting.templates import tokenize

    jobs = read_jobs(run_dir)
    if not jobs:
        raise FileNotFoundError(
            f"{run_dir}: no finished inference job (predictions/*/*.summary.json)"
        )
    tokens: dict[tuple[str, str], list[list[int]]] = {}
    throughputs: dict[str, Any] = {}
    for model in dict.fromkeys(j.model for j in jobs):
        manifest_path = run_dir / "models" / f"{model}.json"
        if not manifest_path.exists():
            raise FileNotFoundError(f"{manifest_path}: the run's model manifest is missing")
        raw_n = min(settings.raw_prompt_tokens, settings.n_batch)
        llm = Llama(
            verify_model_file(read_json(manifest_path)),
            n_ctx=raw_n + settings.raw_decode_tokens + 8,
            n_threads=threads,
            n_threads_batch=threads,
            n_batch=settings.n_batch,
            logits_all=False,
            verbose=False,
        )
        for j in jobs:
            if j.model == model:
                tokens[(model, j.condition)] = [tokenize(llm, p) for p in j.prompts]
        if model in measured:
            throughputs[model] = measured[model]
        else:
            if log:
                print(f"[bench run] raw throughput of {model} at {threads} thread(s)", file=log)
            sample = [t for (m, _), seqs in tokens.items() if m == model for t in seqs]
            if not sample:
                raise ValueError(f"{run_dir}: model {model} answered no prompt in this run")
            throughputs[model] = raw_throughput(
                llm, raw_prompt(sample, raw_n), settings.raw_decode_tokens, settings.repeats
            )
        del llm
    peaks = {m: peak_throughput(t) for m, t in throughputs.items()}
    return {
        "run_dir": str(run_dir),
        "threads": threads,
        "peaks": peaks,
        "throughput": throughputs,
        "rows": bound_rows(jobs, tokens, peaks),
    }
