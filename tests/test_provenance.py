"""The run manifest names the workflow's commit, a location-free config hash and
every installed distribution."""

from __future__ import annotations

import json
import re
import subprocess
from importlib import metadata

from conftest import ROOT

from safescale.report.provenance import config_hash, package_versions, write_manifest

CONFIG = {
    "seed": 7,
    "benchmark": {"path": "resources/benchmark/radsafe_demo.csv"},
    "analysis": {"bootstrap_seed": 3},
}


def test_commit_comes_from_the_workflow_folder_not_the_working_directory(tmp_path, monkeypatch):
    """Under `snakemake -d elsewhere` the working directory is no git checkout."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "manifest.json"
    write_manifest(CONFIG, [], str(out), workflow_dir=ROOT)
    manifest = json.loads(out.read_text())
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{40}", head)
    assert manifest["git"]["commit"] == head
    assert manifest["workflow_dir"] == str(ROOT)


def test_config_is_recorded_and_hashed_as_written(tmp_path):
    out = tmp_path / "manifest.json"
    write_manifest(CONFIG, [], str(out), workflow_dir=ROOT)
    manifest = json.loads(out.read_text())
    assert manifest["config"] == CONFIG
    assert manifest["config_sha256"] == config_hash(CONFIG)
    moved = {**CONFIG, "benchmark": {"path": "/elsewhere/resources/benchmark/radsafe_demo.csv"}}
    assert config_hash(moved) != config_hash(CONFIG)


def test_every_installed_distribution_is_recorded():
    versions = package_versions()
    installed = {d.metadata["Name"] for d in metadata.distributions() if d.metadata["Name"]}
    assert len(versions) == len({re.sub(r"[-_.]+", "-", n).lower() for n in installed}) > 14
    assert versions["llama-cpp-python"] == metadata.version("llama_cpp_python")
    assert versions["hypothesis"] == metadata.version("hypothesis")
