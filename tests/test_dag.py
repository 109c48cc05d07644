"""The DAG: dry runs list every job; lint and format are clean."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True)


@pytest.mark.parametrize("config", ["config/config.yaml", ".test/config/config.yaml"])
def test_dry_run_lists_full_dag(config, tmp_path):
    res = run(
        "-n",
        "--configfile",
        str(ROOT / config),
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    for rule in (
        "prepare_benchmark",
        "chunk_corpus",
        "index_bm25",
        "index_dense",
        "retrieve",
        "build_prompts",
        "run_inference",
        "provenance",
    ):
        assert rule in out, rule


def test_ranked_evidence_conditions_share_one_job_per_model(tmp_path):
    """standard_rag and max_context of a model come from one run_inference_ranked job;
    alone, a ranked condition has a run_inference job of its own."""
    import yaml

    def jobs(conditions: list[str]) -> str:
        cfg = tmp_path / f"{len(conditions)}.yaml"
        cfg.write_text(yaml.safe_dump({"conditions": conditions}))
        res = run(
            "-n", "--configfile", str(ROOT / "config/config.yaml"), str(cfg),
            "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), cwd=tmp_path,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr[-3000:]
        return res.stdout + res.stderr

    both = jobs(["closed_book", "standard_rag", "max_context"])
    assert re.search(r"run_inference_ranked\s+2\b", both), both[-2000:]
    assert re.search(r"run_inference\s+2\b", both)  # closed_book of two models
    alone = jobs(["closed_book", "max_context"])
    assert "run_inference_ranked" not in alone
    assert re.search(r"run_inference\s+4\b", alone)


def test_one_agent_job_plans_for_every_model_when_the_agent_is_shared(tmp_path):
    """The default's `agent_model: largest` runs one agent (the 1.5B) whose transcripts
    every model's agentic_rag prompts read; with `null` each model runs its own."""
    import yaml

    def dry_run(agent: str | None) -> str:
        cfg = tmp_path / f"{agent}.yaml"
        cfg.write_text(yaml.safe_dump({"agentic": {"agent_model": agent}}))
        res = run(
            "-n", "results/prompts/qwen2.5-coder-0.5b/agentic_rag.jsonl",
            "results/agentic/summary.csv",
            "--configfile", str(ROOT / "config/config.yaml"), str(cfg),
            "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), cwd=tmp_path,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr[-3000:]
        return res.stdout + res.stderr

    shared = dry_run("largest")
    assert re.search(r"run_agent\s+1\b", shared), shared[-2000:]
    assert "results/agentic/qwen2.5-coder-1.5b.jsonl" in shared
    assert "results/agentic/qwen2.5-coder-0.5b.jsonl" not in shared
    own = dry_run(None)
    assert re.search(r"run_agent\s+2\b", own), own[-2000:]
    assert "results/agentic/qwen2.5-coder-0.5b.jsonl" in own


def test_lint_is_clean():
    res = run("--lint")
    assert res.returncode == 0 and "Congratulations" in res.stdout + res.stderr, res.stdout[-3000:]


def test_snakefmt_clean():
    res = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow/rules"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr[-2000:]


def test_invalid_config_is_rejected(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / ".test/config/config.yaml").read_text() + "\nunknown_key: 1\n")
    res = run("-n", "--configfile", str(bad))
    assert res.returncode != 0 and "unknown_key" in res.stdout + res.stderr


def test_only_prediction_settings_are_rerun_triggers_of_inference():
    """run_inference's params: decoding, seed, backend and batching, not threads or timeouts."""
    import copy

    from safescale.config import load_config, prediction_settings

    base = load_config(ROOT / ".test/config/config.yaml")
    same = copy.deepcopy(base)
    same["inference"].update(threads=8, on_error="fail", judge_max_tokens=9)
    same["inference"]["openai"].update(concurrency=16, timeout_s=5, max_retries=0)
    assert prediction_settings(same) == prediction_settings(base)
    for section, key, value in [
        ("decoding", "temperature", 0.9),
        ("decoding", "n_samples", 3),
        ("inference", "n_batch", 64),
        ("inference", "n_gpu_layers", -1),
        ("inference", "backend", "openai"),
    ]:
        changed = copy.deepcopy(base)
        changed[section][key] = value
        assert prediction_settings(changed) != prediction_settings(base), key
    served = copy.deepcopy(base)
    served["inference"]["backend"] = "openai"
    elsewhere = copy.deepcopy(served)
    elsewhere["inference"]["openai"]["base_url"] = "http://10.0.0.2:8000/v1"
    assert prediction_settings(elsewhere) != prediction_settings(served)
    assert prediction_settings({**base, "seed": base["seed"] + 1}) != prediction_settings(base)
