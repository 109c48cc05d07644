"""Setup files agree with each other: environment.yml mirrors the lock, docs match the schema."""

from __future__ import annotations

import subprocess
import sys

import yaml
from conftest import ROOT


def test_environment_yml_mirrors_lock():
    lock = {
        line.strip()
        for line in (ROOT / "requirements/lock.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert lock == {p for p in pip if "==" in p and not p.startswith("llama-cpp-python")}


def test_config_readme_is_generated_from_schema():
    res = subprocess.run(
        [sys.executable, str(ROOT / "tools/config_docs.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make reproduce" in readme
    commands = [
        line
        for line in (ROOT / ".ci/run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert commands == ["make test"]


def test_shipped_configs_validate():
    from safescale.config import load_config, selected_models

    for name in (
        "config/config.yaml",
        "config/full.yaml",
        "config/study_gpu.yaml",
        ".test/config/config.yaml",
    ):
        config = load_config(ROOT / name)
        assert selected_models(config), name
