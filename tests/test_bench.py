"""The speed benchmark end to end on the real SmolLM2: structure and sanity, no timing limits."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from safescale import perf as bench
from safescale.config import ROOT, load_config

MODEL = "smollm2-135m"


def numbers(obj: Any, path: str = "") -> Iterator[tuple[str, float]]:
    """Every number in a nested report, with where it sits."""
    if isinstance(obj, bool):
        return
    if isinstance(obj, int | float):
        yield path, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from numbers(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from numbers(v, f"{path}[{i}]")


@pytest.fixture(scope="module")
def report(smollm2_path, tmp_path_factory) -> dict:
    config = load_config(ROOT / "config" / "config.yaml")
    settings = bench.BenchSettings(
        questions=1,
        raw_prompt_tokens=128,
        raw_decode_tokens=8,
        repeats=1,
        paired_decode_tokens=4,
        naive=True,
    )
    return bench.run(
        config,
        [MODEL],
        ["closed_book"],
        settings,
        results=tmp_path_factory.mktemp("results"),
        n_samples=4,
        log=None,
        model_paths={MODEL: smollm2_path},
    )


def test_report_structure(report):
    meta = report["meta"]
    assert meta["n_questions"] == 1 and meta["n_samples"] == 4
    assert meta["conditions"] == ["closed_book"]
    assert "llm.reset()" in meta["naive_baseline"]
    assert (
        "create_completion" in meta["strong_baseline"]
        and "letter_is_final" in (meta["strong_stop_baseline"])
    )
    assert "run_bound" not in report  # its results folder holds no run
    (m,) = report["models"]
    assert m["model"] == MODEL and m["skipped"] == []
    assert set(m["conditions"]) == {"closed_book"}
    (row,) = m["prompts"]
    timings = ("answer", "prime", "greedy", "sample_tree", "sc", "naive", "bound", "bound_a")
    for key in (*timings, "strong", "strong_stop", "strong_over_ours"):
        assert set(row[key]) == {"wall", "cpu"}, key
    for s in (m["conditions"]["closed_book"], m["overall"]):
        for key in (
            "per_question",
            "naive_over_ours",
            "strong_over_ours",
            "strong_stop_over_ours",
            "e2e_over_bound",
            "max_e2e_over_bound",
            "e2e_over_bound_a",
        ):
            assert set(s[key]) == {"wall", "cpu"}, key
    assert row["prompt_tokens"] > 32
    assert row["naive_completion_tokens"] >= 4  # each of the 4 calls decodes at least one token
    # every strong call evaluates at least one token past the cached prompt; the early
    # stop never evaluates more than the plain calls
    assert 4 <= row["strong_stop_evals"] <= row["strong_evals"]
    assert row["tree_steps"] <= row["decode_steps"]


def test_numbers_positive_and_finite(report):
    found = dict(numbers(report["models"]))
    assert found
    for path, x in found.items():
        assert math.isfinite(x), path
        # token and step counts may be zero in principle; every time and ratio is positive
        if not path.endswith(("decode_steps", "tokens", "repeats")):
            assert x > 0, path
    json.dumps(report, allow_nan=False)  # the --out file is strict JSON


def test_table_lists_every_measurement(report):
    text = bench.format_report(report)
    for needle in (
        "(a) raw llama.cpp",
        "prompt tok/s",
        "decode tok/s",
        "e2e s/q",
        "strong+stop/ours",
        "worst answer/bound",
        MODEL,
        "closed_book",
    ):
        assert needle in text, needle


def test_outputs_are_written(report, tmp_path):
    from safescale.perf.outputs import write_outputs

    written = write_outputs(report, tmp_path)
    assert [p.name for p in written] == ["conditions.csv", "bench.png"]
    with (tmp_path / "conditions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["condition"] for r in rows] == ["closed_book", "all"]
    assert float(rows[0]["strong_stop_over_ours_cpu"]) > 0
    assert (tmp_path / "bench.png").stat().st_size > 1000
    assert not list(tmp_path.glob(".*partial*"))


def test_strong_baseline_greedy_text_equals_the_engines(smollm2_path):
    """Parity: create_completion (temperature 0, prefix reuse) says what engine.greedy says."""
    from safescale.inference.llama_engine import LlamaEngine
    from safescale.perf.strong import strong_greedy

    engine = LlamaEngine(smollm2_path, n_ctx=256, threads=1)
    prompt = (
        "<|im_start|>user\nWhich organ makes insulin?\nA. Liver\nB. Pancreas\nC. Spleen\n"
        "D. Kidney\nAnswer with the letter.<|im_end|>\n<|im_start|>assistant\n"
    )
    tokens = engine.tokenize(prompt)
    ours = engine.greedy(len(tokens), engine.prime(tokens), 10).raw
    theirs = strong_greedy(engine.llm, tokens, 10)  # reuses the primed prompt's cache
    assert ours and theirs == ours


def test_command_line_is_the_package_main():
    # `make bench` runs `python -m safescale.perf`: the package's __main__ must parse it.
    done = subprocess.run(
        [sys.executable, "-m", "safescale.perf", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert "usage: python -m safescale.perf" in done.stdout
    assert "--config" in done.stdout and "(c) our self-consistency" in done.stdout
