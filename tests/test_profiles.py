"""Execution profiles: they parse, and dry runs through them show each job's resources.

Dry runs only (a few seconds each): nothing here needs SLURM itself, only the
executor plugin, and the SLURM cases skip where the plugin is not installed.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT

PROFILES = ROOT / "profiles"
NAMES = ("default", "slurm", "slurm-gpu")


def dry_run(*args: str) -> str:
    """`--forceall`: the jobs listed must not depend on what results/ already holds
    (after `make reproduce` a plain dry run finds nothing left to do)."""
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--forceall", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    return out


def resources_of(out: str, rule: str) -> list[str]:
    """The `resources:` line of every job of `rule` in a dry run's output."""
    lines = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", out):
        if re.match(rf"(?:local)?rule {rule}:\n", block):
            lines += re.findall(r"^\s+resources: (.*)$", block, flags=re.M)
    return lines


@pytest.fixture(scope="module")
def slurm_plugin():
    pytest.importorskip("snakemake_executor_plugin_slurm")


@pytest.mark.parametrize("name", NAMES)
def test_profile_parses(name):
    profile = yaml.safe_load((PROFILES / name / "config.yaml").read_text())
    assert isinstance(profile, dict)
    assert {"mem_mb", "runtime"} <= set(profile["default-resources"])
    if name.startswith("slurm"):
        assert profile["executor"] == "slurm"
        assert profile["slurm-status-command"] == "squeue"  # sacct hangs without slurmdbd
        assert "slurm_partition" in profile["default-resources"]
        for rule in ("run_inference", "run_inference_ranked", "run_agent"):
            assert {"cpus_per_task", "gpu"} <= set(profile["set-resources"][rule])
    else:
        assert "executor" not in profile  # the local run never needs SLURM


def test_default_profile_dry_run_lists_resources():
    out = dry_run()  # profiles/default is applied by Snakemake itself
    assert "workflow specific profile profiles/default" in out
    for rule in ("chunk_corpus", "run_inference"):
        lines = resources_of(out, rule)
        assert lines, rule
        assert all("mem_mb=" in line and "runtime=" in line for line in lines), lines
    assert "mem_mb=2000" in resources_of(out, "chunk_corpus")[0]
    assert "runtime=240" in resources_of(out, "run_inference")[0]


def test_slurm_profile_dry_run_lists_resources(slurm_plugin):
    out = dry_run("--profile", "profiles/slurm")
    # Snakemake adds profiles/default (the workflow profile) on its own.
    assert "profiles profiles/slurm and workflow specific profile profiles/default" in out
    for rule in ("chunk_corpus", "run_inference", "run_agent", "compute_metrics"):
        lines = resources_of(out, rule)
        assert lines, rule
        assert all("mem_mb=" in line and "runtime=" in line for line in lines), lines


def test_slurm_profile_without_workflow_profile_sets_partition(slurm_plugin):
    out = dry_run("--profile", "profiles/slurm", "--workflow-profile", "none")
    assert "profiles/default" not in out
    chunk = resources_of(out, "chunk_corpus")[0]
    assert "slurm_partition=debug" in chunk and "mem_mb=2000" in chunk
    for line in resources_of(out, "run_inference"):
        assert "mem_mb=4000" in line and "runtime=240" in line
        assert "cpus_per_task=" in line and "gpu=0" in line


def test_slurm_gpu_profile_requests_gpus_for_inference(slurm_plugin):
    out = dry_run(
        "--profile",
        "profiles/slurm-gpu",
        "--workflow-profile",
        "none",
        "--configfile",
        "config/study_gpu.yaml",
        "--cores",
        "64",  # a dry run otherwise caps threads (hence cpus_per_task) at 1
    )
    for rule in ("run_inference", "run_inference_ranked", "run_agent"):
        lines = resources_of(out, rule)
        assert lines, rule
        for line in lines:
            assert "gpu=1" in line and "slurm_partition=gpu" in line
            assert "cpus_per_task=4" in line  # inference.threads of the study config
    assert "gpu=0" in resources_of(out, "chunk_corpus")[0]
