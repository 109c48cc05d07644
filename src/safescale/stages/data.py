"""Stages of workflow/rules/data.smk: validate the benchmark, fetch model weights."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from safescale import conditions as C
from safescale.data.benchmark import (
    CellRules,
    ColumnMapping,
    load_benchmark,
    required_evidence,
    select,
    write_canonical,
)
from safescale.data.gguf import model_quantization
from safescale.data.models import fetch_model, parse_registry
from safescale.jsonio import write_json

__all__ = ["fetch_model_weights", "prepare_benchmark", "required_evidence"]


def prepare_benchmark(
    *,
    source: str,
    fmt: str,
    columns: Mapping[str, Any],
    label_values: Mapping[str, int],
    options: Mapping[str, int],
    conditions: Sequence[str],
    limit: int | None,
    shuffle: bool,
    stratify_by: str | None,
    seed: int,
    out_questions: str,
    out_summary: str,
) -> None:
    """Validate the user's file (all problems at once) and write the canonical slice."""
    mapping = ColumnMapping.from_config(columns)
    rules = CellRules.from_config({"label_values": label_values, "options": options})
    questions = load_benchmark(source, mapping, fmt, required_evidence(conditions), rules=rules)
    chosen = select(questions, limit=limit, shuffle=shuffle, seed=seed, stratify_by=stratify_by)
    write_canonical(chosen, out_questions)
    unsupported = [
        c
        for c in conditions
        if c in C.EVIDENCE_FIELD and getattr(mapping, C.EVIDENCE_FIELD[c]) is None
    ]
    write_json(
        {
            "source": source,
            "n_questions_in_file": len(questions),
            "n_questions_used": len(chosen),
            "question_ids": [q.question_id for q in chosen],
            "conditions_without_data": unsupported,
        },
        out_summary,
    )


def fetch_model_weights(*, entry: Mapping[str, Any], cache_dir: str, out_manifest: str) -> None:
    spec = next(iter(parse_registry([entry]).values()))
    t0 = time.time()
    path, digest = fetch_model(spec, Path(cache_dir))
    quantization, quantization_from = model_quantization(spec, path)
    write_json(
        {
            "name": spec.name,
            "family": spec.family,
            "params_b": spec.params_b,
            "path": str(path),
            "sha256": digest,
            "size_bytes": path.stat().st_size,
            "prompt_style": spec.prompt_style,
            "n_ctx": spec.n_ctx,
            "licence": spec.licence,
            "quantization": quantization,
            "quantization_from": quantization_from,
            "instruct": spec.instruct,
            "coder": spec.coder,
            "served_model": entry.get("served_model"),
            "source": entry.get("source"),
            "seconds": round(time.time() - t0, 2),
        },
        out_manifest,
    )
