"""The run manifest: enough to tell exactly what produced a results/ folder."""

from __future__ import annotations

import hashlib
import json
import platform
import re
import subprocess
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 of the config as written (relative paths kept): the same run config
    gives the same hash wherever the checkout lies."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def package_versions() -> dict[str, str]:
    """Every installed distribution (PEP 503 name -> version), sorted by name."""
    found = {
        _normalised(dist.metadata["Name"]): dist.version
        for dist in metadata.distributions()
        if dist.metadata["Name"]
    }
    return dict(sorted(found.items()))


def llama_build_info() -> dict[str, Any]:
    try:
        import llama_cpp

        info = llama_cpp.llama_print_system_info().decode(errors="replace")
        return {"version": llama_cpp.__version__, "system_info": info.strip()}
    except Exception as exc:  # provenance must not fail the run
        return {"error": repr(exc)}


def git_commit(cwd: Path) -> dict[str, Any]:
    """The commit of the checkout at `cwd`: the workflow's own folder, never the
    working directory (`snakemake -d` runs elsewhere)."""

    def run(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    status = run("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": run("rev-parse", "HEAD"),
        "dirty": bool(status) if status is not None else None,
    }


def write_manifest(
    config: Mapping[str, Any],
    model_manifests: Sequence[str],
    out: str,
    *,
    workflow_dir: Path,
) -> None:
    """The manifest of one run; `config` as written (before paths were resolved
    against `workflow_dir`), so its hash does not depend on where the checkout is."""
    from safescale.jsonio import read_json, write_json

    models = [read_json(p) for p in model_manifests]
    write_json(
        {
            "config": config,
            "config_sha256": config_hash(config),
            "seeds": {
                "seed": config.get("seed"),
                "bootstrap_seed": config.get("analysis", {}).get("bootstrap_seed"),
            },
            "models": [
                {
                    k: m.get(k)
                    for k in (
                        "name",
                        "family",
                        "params_b",
                        "sha256",
                        "size_bytes",
                        "source",
                        "licence",
                    )
                }
                for m in models
            ],
            "packages": package_versions(),
            "llama_cpp": llama_build_info(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "workflow_dir": str(workflow_dir),
            "git": git_commit(workflow_dir),
        },
        out,
    )
