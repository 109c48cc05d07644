"""The speed benchmark end to end on the real SmolLM2: structure and sanity, no timing limits."""

from __future__ import annotations

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
        questions=1, raw_prompt_tokens=128, raw_decode_tokens=8, repeats=1, paired_decode_tokens=4
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
    (m,) = report["models"]
    assert m["model"] == MODEL and m["skipped"] == []
    assert set(m["conditions"]) == {"closed_book"}
    (row,) = m["prompts"]
    for key in ("answer", "prime", "greedy", "sample_tree", "sc", "naive", "bound", "bound_a"):
        assert set(row[key]) == {"wall", "cpu"}, key
    for s in (m["conditions"]["closed_book"], m["overall"]):
        for key in ("per_question", "naive_over_ours", "e2e_over_bound", "e2e_over_bound_a"):
            assert set(s[key]) == {"wall", "cpu"}, key
    assert row["prompt_tokens"] > 32
    assert row["naive_completion_tokens"] >= 4  # each of the 4 calls decodes at least one token


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
        "(c) naive/ours",
        "(d) e2e/bound",
        MODEL,
        "closed_book",
    ):
        assert needle in text, needle


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
