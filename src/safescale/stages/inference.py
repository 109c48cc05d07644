"""Stages of workflow/rules/inference.smk: answer every prompt, summarise parsing, judge."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

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
    from safescale.config import decoding as decoding_of
    from safescale.data.models import verify_model_file
    from safescale.inference.llama_engine import LlamaEngine
    from safescale.inference.predict import parse_summary, predict_llama, run_key
    from safescale.inference.runner import run_resumable
    from safescale.prompting.templates import Renderer

    manifest = read_json(model)
    questions = {q.question_id: q for q in read_canonical(benchmark)}
    prompt_records = read_jsonl(prompts)
    dec = decoding_of(config)
    settings = config["inference"]
    longest = max((p["n_prompt_tokens"] for p in prompt_records), default=0)
    n_ctx = min(manifest["n_ctx"], longest + max(dec.greedy_max_tokens, dec.sample_max_tokens) + 8)
    engine = None
    if settings["backend"] == "openai":
        from safescale.inference.openai_backend import backend_from_config, predict_openai

        backend = backend_from_config(config, manifest.get("served_model") or manifest["name"])
        key = run_key(
            prompt_records,
            f"{manifest['sha256']}@{settings['openai']['base_url']}",
            dec,
            config["seed"],
        )

        def predict(q, prompt):
            return predict_openai(backend, q, prompt, dec, config["seed"], settings["on_error"])

    else:
        if any(p["status"] == "ok" for p in prompt_records):
            engine = LlamaEngine(
                verify_model_file(manifest),
                n_ctx=max(n_ctx, 64),
                threads=threads,
                n_batch=settings["n_batch"],
                n_gpu_layers=settings["n_gpu_layers"],
            )
        key = run_key(prompt_records, manifest["sha256"], dec, config["seed"])
        head = (
            engine.tokenize(Renderer(manifest["prompt_style"], engine.llm).head())
            if engine is not None
            else None
        )

        def predict(q, prompt):
            return predict_llama(
                engine, q, prompt, dec, config["seed"], settings["on_error"], head=head
            )

    t0, cpu0 = time.time(), time.process_time()
    counts = run_resumable(
        ((questions[p["question_id"]], p) for p in prompt_records),
        out_predictions,
        key,
        predict,
        label=f"{manifest['name']}/{prompt_records[0]['condition']}",
    )
    summary = parse_summary(read_jsonl(out_predictions))
    summary.update(
        counts,
        model=manifest["name"],
        condition=prompt_records[0]["condition"],
        seconds=round(time.time() - t0, 2),
        # CPU clocks for the bench's token bound (docs/BENCHMARKS.md): on a shared machine
        # wall time is mostly waiting; the whole process includes model load.
        cpu_seconds=round(time.process_time() - cpu0, 2),
        process_cpu_seconds=round(time.process_time(), 2),
    )
    if engine is not None:
        summary["engine"] = engine.stats.__dict__
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
