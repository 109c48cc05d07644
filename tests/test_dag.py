"""The DAG: dry runs list every job; lint and format are clean."""

from __future__ import annotations

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
