"""Stages of workflow/rules/inference.smk: answer every prompt, summarise parsing, judge."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from safescale import conditions as C
from safescale.data.benchmark import read_canonical
from safescale.jsonio import read_json, read_jsonl, write_json, write_jsonl


def run_inference(
    *,
    benchmark: str,
    prompts: str,
    model: str,
    config: Mapping[str, Any],
    threads: int,
    out_predictions: str,
    out_summary: str,
) -> None:
    """Greedy answer, letter probabilities and SC samples per prompt; resumable."""
    _answer_prompts(
        benchmark=benchmark,
        prompts=[prompts],
        model=model,
        config=config,
        threads=threads,
        out_predictions=[out_predictions],
        out_summaries=[out_summary],
        job=None,
    )


def run_inference_ranked(
    *,
    benchmark: str,
    prompts: Sequence[str],
    model: str,
    config: Mapping[str, Any],
    threads: int,
    out_predictions: Sequence[str],
    out_summaries: Sequence[str],
) -> None:
    """The ranked-evidence conditions of one model in one job, question by question:
    top-k RAG's evidence is the start of max-context's (and top-1's of top-5's), so
    the shared start of a question's prompts is evaluated once. Each condition
    keeps its own resumable file and summary; the results are those of separate jobs."""
    _answer_prompts(
        benchmark=benchmark,
        prompts=prompts,
        model=model,
        config=config,
        threads=threads,
        out_predictions=out_predictions,
        out_summaries=out_summaries,
        job=C.RANKED_EVIDENCE_JOB,
    )


def _answer_prompts(
    *,
    benchmark: str,
    prompts: Sequence[str],
    model: str,
    config: Mapping[str, Any],
    threads: int,
    out_predictions: Sequence[str],
    out_summaries: Sequence[str],
    job: str | None,
) -> None:
    from safescale.config import decoding as decoding_of
    from safescale.data.models import verify_model_file
    from safescale.inference.llama_engine import EngineStats, LlamaEngine
    from safescale.inference.predict import parse_summary, predict_llama, run_key
    from safescale.inference.runner import Task, run_resumable_together
    from safescale.prompting.templates import Renderer

    manifest = read_json(model)
    questions = {q.question_id: q for q in read_canonical(benchmark)}
    record_sets = [read_jsonl(p) for p in prompts]
    conditions = [records[0]["condition"] for records in record_sets]
    dec = decoding_of(config)
    settings = config["inference"]
    longest = max((p["n_prompt_tokens"] for rs in record_sets for p in rs), default=0)
    n_ctx = min(manifest["n_ctx"], longest + max(dec.greedy_max_tokens, dec.sample_max_tokens) + 8)
    engine = None
    if settings["backend"] == "openai":
        from safescale.inference.openai_backend import backend_from_config, predict_openai

        backend = backend_from_config(config, manifest.get("served_model") or manifest["name"])
        model_key = f"{manifest['sha256']}@{settings['openai']['base_url']}"

        def predict(q, prompt):
            return predict_openai(backend, q, prompt, dec, config["seed"], settings["on_error"])

    else:
        if any(p["status"] == "ok" for rs in record_sets for p in rs):
            engine = LlamaEngine(
                verify_model_file(manifest),
                n_ctx=max(n_ctx, 64),
                threads=threads,
                n_batch=settings["n_batch"],
                n_gpu_layers=settings["n_gpu_layers"],
            )
        model_key = manifest["sha256"]
        head = (
            engine.tokenize(Renderer(manifest["prompt_style"], engine.llm).head())
            if engine is not None
            else None
        )

        def predict(q, prompt):
            return predict_llama(
                engine, q, prompt, dec, config["seed"], settings["on_error"], head=head
            )

    # engine counters per condition (the bench's token bound reads them)
    stats = {c: EngineStats() for c in conditions}

    def counted(q, prompt):
        before = dict(engine.stats.__dict__) if engine is not None else None
        rec = predict(q, prompt)
        if engine is not None and before is not None:
            mine = stats[prompt["condition"]]
            for name, value in engine.stats.__dict__.items():
                setattr(mine, name, getattr(mine, name) + value - before[name])
        return rec

    tasks = [
        Task(
            [(questions[p["question_id"]], p) for p in records],
            Path(out),
            run_key(records, model_key, dec, config["seed"]),
        )
        for records, out in zip(record_sets, out_predictions, strict=True)
    ]
    run_resumable_together(tasks, counted, label=f"{manifest['name']}/{'+'.join(conditions)}")
    for task, condition, out_summary in zip(tasks, conditions, out_summaries, strict=True):
        summary = parse_summary(read_jsonl(task.output))
        summary.update(
            resumed=int(task.counts["resumed"]),
            computed=int(task.counts["computed"]),
            model=manifest["name"],
            condition=condition,
            seconds=round(task.counts["seconds"], 2),
            # CPU clocks for the bench's token bound (docs/BENCHMARKS.md): on a shared
            # machine wall time is mostly waiting. `cpu_seconds`: this condition's
            # prompts; `process_cpu_seconds`: the whole job, model load included.
            cpu_seconds=round(task.counts["cpu_seconds"], 2),
            process_cpu_seconds=round(time.process_time(), 2),
            job=job or condition,
            job_conditions=conditions,
        )
        if engine is not None:
            summary["engine"] = stats[condition].__dict__
        print(json.dumps(summary))
        write_json(summary, out_summary)


def summarize_parsing(
    *, summaries: Sequence[str], predictions: Sequence[str], out_table: str, out_unparsed: str
) -> None:
    """Parse rate, NULLs, skips, errors and letter mass per (model, condition);
    unparsed outputs for review."""
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
        "letter_mass_median",
        "prob_reliable",
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
    *,
    benchmark: str,
    predictions: str,
    judge: str | None,
    config: Mapping[str, Any],
    threads: int,
    out_predictions: str,
    out_summary: str,
) -> None:
    """Copy predictions, re-parsing NULL outputs with the judge model when one is set."""
    from safescale.inference.judge import judge_records
    from safescale.inference.llama_engine import chat_generator
    from safescale.inference.predict import parse_summary

    records = read_jsonl(predictions)
    stats = {"judge": None, "outputs_judged": 0, "outputs_recovered": 0}
    if judge:
        manifest = read_json(judge)
        settings = config["inference"]
        generate = chat_generator(
            manifest,
            max_ctx=2048,
            threads=threads,
            n_batch=settings["n_batch"],
            n_gpu_layers=settings["n_gpu_layers"],
        )

        def ask(messages: list[dict[str, str]]) -> str:
            return generate(messages, settings["judge_max_tokens"])

        questions = {q.question_id: q for q in read_canonical(benchmark)}
        records, counts = judge_records(records, questions, ask)
        stats = {"judge": manifest["name"], **counts}
    write_jsonl(records, out_predictions)
    summary = {**parse_summary(records), **stats}
    print(json.dumps(summary))
    write_json(summary, out_summary)
