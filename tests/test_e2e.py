"""The whole DAG on the tiny config through a real model, then its contracts.

One session-scoped run (a few minutes on 2 cores); the tests read its outputs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

from safescale.jsonio import read_jsonl

TINY = ROOT / ".test" / "config" / "config.yaml"


def snakemake_cmd(workdir: Path, *args: str, cores: int = 2) -> list[str]:
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(TINY),
        "--cores",
        str(cores),
        *args,
    ]


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_cmd(workdir, *args), capture_output=True, text=True)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, smollm2_path):
    workdir = tmp_path_factory.mktemp("tiny")
    res = snakemake(workdir)
    assert res.returncode == 0, res.stderr[-5000:]
    return workdir


def test_every_prediction_file_is_complete(tiny_run):
    config = __import__("yaml").safe_load(TINY.read_text())
    bench = read_jsonl(tiny_run / "results/data/benchmark.jsonl")
    for condition in config["conditions"]:
        recs = read_jsonl(tiny_run / f"results/predictions/smollm2-135m/{condition}.jsonl")
        assert [r["question_id"] for r in recs] == [q["question_id"] for q in bench]
        for r in recs:
            assert r["status"] in ("ok", "skipped", "error")
            if r["status"] == "ok":
                assert len(r["samples"]) == config["decoding"]["n_samples"]
                assert abs(sum(r["letter_probs"].values()) - 1) < 1e-6


def test_prompts_respect_budgets(tiny_run):
    for path in (tiny_run / "results/prompts/smollm2-135m").glob("*.jsonl"):
        for r in read_jsonl(path):
            assert r["n_prompt_tokens"] + 10 <= 8192
            if path.stem == "max_context" and r["status"] == "ok":
                assert r["n_context_tokens"] <= 512 + 1


def test_agentic_transcripts_have_queries_and_ids(tiny_run):
    transcripts = read_jsonl(tiny_run / "results/agentic/smollm2-135m.jsonl")
    assert transcripts and all(t["rounds"] for t in transcripts)
    for t in transcripts:
        first = t["rounds"][0]
        assert first["queries"] and first["retrieved"][0]["chunk_ids"]


def test_parse_summary_and_provenance(tiny_run):
    text = (tiny_run / "results/predictions/parse_summary.csv").read_text()
    assert "greedy_parse_rate" in text and "smollm2-135m" in text
    manifest = json.loads((tiny_run / "results/provenance/manifest.json").read_text())
    assert manifest["models"][0]["sha256"]
    assert manifest["packages"]["llama-cpp-python"] == "0.3.36"


def _without_timings(records: list[dict]) -> list[dict]:
    return [
        {**r, "greedy": {**r["greedy"], "latency_s": None}} if r["greedy"] else r for r in records
    ]


def test_second_full_run_gives_identical_predictions(tiny_run):
    """Every model-dependent job again (agent transcripts, prompts, inference):
    byte-identical predictions, timings aside."""
    paths = sorted((tiny_run / "results/predictions").glob("*/*.jsonl"))
    before = {p: read_jsonl(p) for p in paths}
    res = snakemake(tiny_run, "--forcerun", "run_agent", "build_prompts", "run_inference")
    assert res.returncode == 0, res.stderr[-3000:]
    for p in paths:
        assert _without_timings(read_jsonl(p)) == _without_timings(before[p]), p.name


def test_kill_mid_job_then_rerun_resumes(tiny_run):
    """SIGKILL the inference job after its first question; the rerun resumes there."""
    target = "results/predictions/smollm2-135m/conflict_evidence.jsonl"
    before = read_jsonl(tiny_run / target)
    partial = tiny_run / (target + ".partial")
    cmd = snakemake_cmd(tiny_run, "--forcerun", "run_inference", target, cores=1)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if partial.exists() and len(partial.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert partial.exists() and not (tiny_run / target).exists()
    assert snakemake(tiny_run, "--unlock").returncode == 0  # a SIGKILL leaves the lock behind
    res = snakemake(tiny_run, target)
    assert res.returncode == 0, res.stderr[-3000:]
    after = read_jsonl(tiny_run / target)
    assert [r["question_id"] for r in after] == [r["question_id"] for r in before]
    assert _without_timings(after) == _without_timings(before)
    summary = json.loads((tiny_run / target.replace(".jsonl", ".summary.json")).read_text())
    assert summary["resumed"] >= 1 and summary["resumed"] + summary["computed"] == len(before)
    assert not partial.exists()


def test_analysis_outputs_and_report(tiny_run):
    for rel in (
        "results/labels/labels.parquet",
        "results/metrics/metrics.csv",
        "results/metrics/metrics_ci.csv",
        "results/metrics/paired_comparisons.csv",
        "results/scaling/slopes.csv",
        "results/gate/gate_table.csv",
        "results/worstcase/worst_questions.csv",
        "results/SUMMARY.md",
        "results/tables/table1_metrics_ci.md",
    ):
        assert (tiny_run / rel).stat().st_size > 0, rel
    summary = (tiny_run / "results/SUMMARY.md").read_text()
    assert "not from the published study" in summary
    # One model: scaling is honestly not estimable, and says why.
    assert "not_estimable" in (tiny_run / "results/scaling/slopes.csv").read_text()
    res = snakemake(tiny_run, "--report", str(tiny_run / "report.html"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tiny_run / "report.html").stat().st_size > 10_000
