"""The whole DAG on the tiny config through a real model, then its contracts.

One session-scoped run (a few minutes on 2 cores); the tests read its outputs.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT

from safescale.jsonio import read_jsonl
from safescale.report.provenance import config_hash

TINY = ROOT / ".test" / "config" / "config.yaml"


def snakemake_cmd(workdir: Path, *args: str, cores: int = 2, config: Path = TINY) -> list[str]:
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(config),
        "--cores",
        str(cores),
        *args,
    ]


def snakemake(workdir: Path, *args: str, config: Path = TINY) -> subprocess.CompletedProcess:
    return subprocess.run(
        snakemake_cmd(workdir, *args, config=config), capture_output=True, text=True
    )


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, smollm2_path):
    workdir = tmp_path_factory.mktemp("tiny")
    res = snakemake(workdir)
    assert res.returncode == 0, res.stderr[-5000:]
    return workdir


def test_every_prediction_file_is_complete_and_answered(tiny_run):
    """The tiny config fits every condition: every record is `ok`, with real answers.
    A run whose questions all failed (status `error`) must not pass."""
    config = yaml.safe_load(TINY.read_text())
    bench = read_jsonl(tiny_run / "results/data/benchmark.jsonl")
    for condition in config["conditions"]:
        recs = read_jsonl(tiny_run / f"results/predictions/smollm2-135m/{condition}.jsonl")
        assert [r["question_id"] for r in recs] == [q["question_id"] for q in bench]
        assert [r["status"] for r in recs] == ["ok"] * len(bench), condition
        samples = [s for r in recs for s in r["samples"]]
        for r in recs:
            assert len(r["samples"]) == config["decoding"]["n_samples"]
            assert r["greedy"]["raw"].strip() and r["greedy"]["n_tokens"] >= 1
            assert abs(sum(r["letter_probs"].values()) - 1) < 1e-6
            assert 0 < r["letter_mass"] <= 1
        # Non-trivial: parsed letters, mostly, in greedy answers and samples.
        assert any(r["greedy"]["letter"] for r in recs), condition
        assert sum(s["letter"] is not None for s in samples) >= len(samples) / 2, condition


def test_prompts_respect_budgets(tiny_run):
    for path in (tiny_run / "results/prompts/smollm2-135m").glob("*.jsonl"):
        for r in read_jsonl(path):
            assert r["n_prompt_tokens"] + 10 <= 8192
            if path.stem == "max_context" and r["status"] == "ok":
                assert r["n_context_tokens"] <= 512 + 1


def test_agentic_transcripts_record_what_the_agent_did(tiny_run):
    """Each round shows passage text and records the reply and its decision; the
    counts add up; the agentic prompts use the model's choice or the marked fallback;
    results/agentic/summary.csv reports the same counts."""
    bench = {q["question_id"]: q for q in read_jsonl(tiny_run / "results/data/benchmark.jsonl")}
    chunk_ids = {c["chunk_id"] for c in read_jsonl(tiny_run / "results/index/chunks.jsonl")}
    transcripts = read_jsonl(tiny_run / "results/agentic/smollm2-135m.jsonl")
    assert [t["question_id"] for t in transcripts] == list(bench)
    settings = yaml.safe_load(TINY.read_text())["agentic"]
    for t in transcripts:
        rounds = t["rounds"]
        assert 1 <= t["n_rounds"] == len(rounds) <= settings["max_rounds"]
        assert t["seed"]["query"] == bench[t["question_id"]]["question"]
        assert t["usable_rounds"] == sum(r["decision"] != "none" for r in rounds)
        assert t["n_fallbacks"] == t["n_rounds"] - t["usable_rounds"]
        assert t["n_model_queries"] == sum(len(r["queries"]) for r in rounds)
        assert all(r["decision"] != "enough" for r in rounds[:-1])
        assert t["stopped_by"] == ("model" if rounds[-1]["decision"] == "enough" else "limit")
        shown = [s["chunk_id"] for r in rounds for s in r["shown"]]
        assert shown and set(shown) <= chunk_ids and t["passages_shown"] == len(shown)
        assert [s["n"] for r in rounds for s in r["shown"]] == list(range(1, len(shown) + 1))
        for r in rounds:
            assert 0 <= r["decode_tokens"] <= settings["plan_max_tokens"]
            assert 0 < r["prompt_tokens_evaluated"] <= r["prompt_tokens"]
            for x in r.get("searched", []):
                assert x["by"] == ("model" if r["queries"] else "fallback")
                assert set(x["chunk_ids"]) <= chunk_ids
        assert t["prompt_tokens"] == sum(r["prompt_tokens"] for r in rounds)
        assert t["decode_tokens"] == sum(r["decode_tokens"] for r in rounds)
        if t["evidence"] == "model":
            chosen = [shown[n - 1] for n in rounds[-1]["chosen"]]
            assert t["final_chunk_ids"] == chosen[: len(t["final_chunk_ids"])]
            assert t["passages_chosen"] == len(t["final_chunk_ids"]) > 0
        else:
            assert t["passages_chosen"] == 0 and t["final_chunk_ids"]
    prompts = read_jsonl(tiny_run / "results/prompts/smollm2-135m/agentic_rag.jsonl")
    final = {t["question_id"]: t["final_chunk_ids"] for t in transcripts}
    for p in prompts:
        assert p["context_ids"] and set(p["context_ids"]) <= set(final[p["question_id"]])
    log = (tiny_run / "logs/agentic/smollm2-135m.log").read_text()
    usable = sum(t["usable_rounds"] for t in transcripts)
    rounds_total = sum(t["n_rounds"] for t in transcripts)
    fallback = sum(t["evidence"] == "fallback" for t in transcripts)
    assert f"usable rounds: {usable}/{rounds_total}; fallback evidence: {fallback}/" in log
    summary = pd.read_csv(tiny_run / "results/agentic/summary.csv").set_index("model")
    row = summary.loc["smollm2-135m"]
    assert (row["questions"], row["rounds"], row["usable_rounds"]) == (
        len(transcripts),
        rounds_total,
        usable,
    )
    assert row["fallback_evidence"] == fallback
    assert row["decode_tokens"] == sum(t["decode_tokens"] for t in transcripts)
    assert bool(row["mostly_fallback"]) == (usable < rounds_total / 2 or fallback > len(bench) / 2)


def test_parse_summary_and_provenance(tiny_run):
    table = pd.read_csv(tiny_run / "results/predictions/parse_summary.csv")
    assert set(table["model"]) == {"smollm2-135m"}
    assert (table["n_ok"] == table["n_questions"]).all() and table["n_error"].eq(0).all()
    assert table["letter_mass_median"].between(0, 1, inclusive="right").all()
    assert table["prob_reliable"].eq(table["letter_mass_median"] >= 0.5).all()
    manifest = json.loads((tiny_run / "results/provenance/manifest.json").read_text())
    assert manifest["models"][0]["sha256"]
    assert manifest["packages"]["llama-cpp-python"] == "0.3.36"
    assert len(manifest["packages"]) > 14
    # Run with -d elsewhere: the commit still comes from the workflow's checkout.
    assert re.fullmatch(r"[0-9a-f]{40}", manifest["git"]["commit"] or "")
    # The config as written, hashed before paths were made absolute.
    assert manifest["config"]["benchmark"]["path"] == "resources/benchmark/radsafe_demo.csv"
    assert manifest["config_sha256"] == config_hash(manifest["config"])


def test_only_prediction_settings_rerun_inference(tiny_run, tmp_path):
    """More threads or another server timeout reruns no inference job; a new
    temperature reruns them all."""
    base = yaml.safe_load(TINY.read_text())
    faster = tmp_path / "faster.yaml"
    faster.write_text(
        yaml.safe_dump(
            {**base, "inference": {**base["inference"], "threads": 2, "openai": {"timeout_s": 9}}}
        )
    )
    res = snakemake(tiny_run, "-n", config=faster)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "run_inference" not in res.stdout + res.stderr
    hotter = tmp_path / "hotter.yaml"
    hotter.write_text(
        yaml.safe_dump({**base, "decoding": {**base["decoding"], "temperature": 0.9}})
    )
    res = snakemake(tiny_run, "-n", config=hotter)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "run_inference" in res.stdout + res.stderr


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
    assert summary.index("## What this run can and cannot show") < summary.index("## Headline")
    assert "**Power** (smollm2-135m, the largest model" in summary
    # One model: scaling is honestly not estimable, and says why.
    assert "not_estimable" in (tiny_run / "results/scaling/slopes.csv").read_text()
    assert summary.count("Not estimable with this panel") == 1
    cases = pd.read_csv(tiny_run / "results/tables/case_browser.csv")
    assert set(cases["model"]) <= {"smollm2-135m"}
    assert ((cases["high_risk"] == 1) | (cases["unsafe"] == 1)).all()
    res = snakemake(tiny_run, "--report", str(tiny_run / "report.html"))
    assert res.returncode == 0, res.stderr[-3000:]
    report = (tiny_run / "report.html").read_text()
    assert len(report) > 10_000 and "What this run can and cannot show" in report


def test_forced_dry_run_lists_every_job_after_a_run(tiny_run):
    """What results/ already holds never decides what the forced dry runs of the
    profile tests list: after a full run, every rule is still there."""
    res = snakemake(tiny_run, "-n", "--forceall")
    assert res.returncode == 0, res.stderr[-3000:]
    for rule in ("chunk_corpus", "index_dense", "run_agent", "run_inference", "compute_metrics"):
        assert f"rule {rule}:" in res.stdout + res.stderr, rule


def test_a_forced_skipped_cell_is_skipped_everywhere(tiny_run, tmp_path):
    """A window too small for the max-context block skips that cell: metrics.csv, the
    tables and SUMMARY.md say `skipped`, and no contrast, McNemar test or fit uses it."""
    import shutil

    work = tmp_path / "skip"
    shutil.copytree(tiny_run, work, symlinks=True)
    base = yaml.safe_load(TINY.read_text())
    # 8192-token window - 8000 reserved for the question - margin: no room for context
    small = tmp_path / "small_window.yaml"
    small.write_text(
        yaml.safe_dump(
            {**base, "prompting": {**base["prompting"], "question_reserve_tokens": 8000}}
        )
    )
    target = "results/prompts/smollm2-135m/max_context.jsonl"
    res = snakemake(work, "--rerun-triggers", "mtime", "--forcerun", target, config=small)
    assert res.returncode == 0, res.stderr[-5000:]
    assert {r["status"] for r in read_jsonl(work / target)} == {"skipped"}
    metrics = pd.read_csv(work / "results/metrics/metrics.csv").set_index(["model", "condition"])
    cell = metrics.loc[("smollm2-135m", "max_context")]
    assert cell["cell_status"] == "skipped" and cell["n_questions"] == 0
    assert cell["n_skipped"] == base["benchmark"]["limit"]
    assert pd.isna(cell["accuracy"]) and pd.isna(cell["high_risk_rate"])
    answered = metrics.drop(index=("smollm2-135m", "max_context"))
    assert (answered["cell_status"] == "ok").all() and answered["accuracy"].notna().all()
    paired = pd.read_csv(work / "results/metrics/paired_comparisons.csv")
    assert not paired["label"].str.contains("max_context").any()
    assert "max_context" not in set(pd.read_csv(work / "results/metrics/mcnemar.csv").condition)
    slopes = pd.read_csv(work / "results/scaling/slopes.csv")
    assert "max_context" not in set(slopes["condition"].dropna())
    table1 = pd.read_csv(work / "results/tables/table1_metrics_ci.csv").set_index("condition")
    assert table1.loc["max_context", "accuracy"] == "skipped"
    summary = (work / "results/SUMMARY.md").read_text()
    assert re.search(r"\*\*Skipped cells\*\*.*smollm2-135m/max_context", summary)
    assert (work / "results/figures/heatmap_accuracy.png").stat().st_size > 0
