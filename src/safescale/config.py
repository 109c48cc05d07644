"""Loading and validating the workflow config outside Snakemake (CLI, tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from safescale.data.models import ModelSpec, default_cache_dir, parse_registry
from safescale.inference.llama_engine import Decoding
from safescale.inference.sampling import SamplingSettings

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """Schema check that also fills defaults (snakemake's validator, as in the DAG)."""
    from snakemake.utils import validate as sm_validate

    sm_validate(config, str(SCHEMA), set_default=True)
    return config


def load_config(path: str | Path) -> dict[str, Any]:
    with Path(path).open(encoding="utf-8") as fh:
        return validate(yaml.safe_load(fh) or {})


def registry(config: dict[str, Any], base: Path = ROOT) -> dict[str, ModelSpec]:
    path = Path(config["models_registry"])
    with (path if path.is_absolute() else base / path).open(encoding="utf-8") as fh:
        return parse_registry(yaml.safe_load(fh))


def selected_models(config: dict[str, Any], base: Path = ROOT) -> list[ModelSpec]:
    specs = registry(config, base)
    wanted = list(config["models"])
    for extra in (config["agentic"].get("agent_model"), config["inference"].get("judge_model")):
        if extra and extra not in wanted:
            wanted.append(extra)
    unknown = [m for m in wanted if m not in specs]
    if unknown:
        raise ValueError(
            f"models {unknown} are not in the registry {config['models_registry']}; "
            f"known: {sorted(specs)}"
        )
    return [specs[m] for m in wanted]


def cache_dir(config: dict[str, Any]) -> Path:
    return (
        Path(config["cache_dir"]).expanduser() if config.get("cache_dir") else default_cache_dir()
    )


def decoding(config: dict[str, Any]) -> Decoding:
    d = config["decoding"]
    return Decoding(
        greedy_max_tokens=d["greedy_max_tokens"],
        n_samples=d["n_samples"],
        sample_max_tokens=d["sample_max_tokens"],
        sampling=SamplingSettings(d["temperature"], d["top_k"], d["top_p"], d["min_p"]),
    )


def prediction_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The settings that change predictions: rule run_inference's params, so a
    change reruns inference and nothing else does (threads, server concurrency,
    timeouts, retries and on_error leave every prediction as it is).

    The batch size and GPU offload stay in: logits depend on how tokens are
    batched and on the device's kernels. The server URL counts only for the
    openai backend.
    """
    inference = config["inference"]
    openai = inference["backend"] == "openai"
    return {
        "seed": config["seed"],
        "decoding": config["decoding"],
        "backend": inference["backend"],
        "n_batch": None if openai else inference["n_batch"],
        "n_gpu_layers": None if openai else inference["n_gpu_layers"],
        "server": inference["openai"]["base_url"] if openai else None,
    }
