"""The whole benchmark: every model on the same question slice and conditions, one process."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from safescale import conditions as C
from safescale.perf.inputs import BenchSettings, build_prompts, default_conditions, load_questions
from safescale.perf.measure import NAIVE_BASELINE, bench_model
from safescale.perf.report import TARGETS
from safescale.perf.runbound import run_bound
from safescale.perf.strong import STRONG_BASELINE, STRONG_STOP_BASELINE


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
    When `results` holds a finished run (predictions with their summaries), the
    report also has its token bound ("run_bound"), with peak throughputs measured
    here at the config's `inference.threads`.
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
        "strong_baseline": STRONG_BASELINE,
        "strong_stop_baseline": STRONG_STOP_BASELINE,
        "targets": dict(TARGETS),
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
    out: dict[str, Any] = {"meta": meta, "models": out_models}
    if any((results / "predictions").glob("*/*.summary.json")):
        threads = int(config["inference"]["threads"])
        measured = {m["model"]: m["throughput"] for m in out_models if settings.threads == threads}
        out["run_bound"] = run_bound(results, threads, settings, measured, log)
    meta["loadavg_end"] = list(os.getloadavg())
    meta["cpu_model"] = cpu_model()
    return out


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), for the report's machine line."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
