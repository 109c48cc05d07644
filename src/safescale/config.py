"""Loading and validating the workflow config outside Snakemake (CLI, tests)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from safescale.data.models import ModelSpec, default_cache_dir, largest_model, parse_registry
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
        return parse_registry(yaml.safe_load(fh), source=config["models_registry"])


# `agentic.agent_model: largest`: the run's model with the most nominal parameters plans
# the searches of every model, as the study handed every model one pre-built report.
LARGEST_AGENT = "largest"


def planning_agent(config: Mapping[str, Any], specs: Mapping[str, ModelSpec]) -> str | None:
    """The registry model that plans the agentic searches of every model under test;
    None: each model plans its own."""
    name = config["agentic"].get("agent_model")
    if name != LARGEST_AGENT:
        return name
    return largest_model({m: specs[m].params_b for m in config["models"]})


def selected_models(config: dict[str, Any], base: Path = ROOT) -> list[ModelSpec]:
    specs = registry(config, base)
    wanted = list(config["models"])

    def check_known(names: Sequence[str]) -> None:
        unknown = [m for m in names if m not in specs]
        if unknown:
            raise ValueError(
                f"models {unknown} are not in the registry {config['models_registry']}; "
                f"known: {sorted(specs)}"
            )

    check_known(wanted)
    for extra in (planning_agent(config, specs), config["inference"].get("judge_model")):
        if extra and extra not in wanted:
            wanted.append(extra)
    check_known(wanted)
    return [specs[m] for m in wanted]


def cache_dir(config: dict[str, Any]) -> Path:
    return (
        Path(config["cache_dir"]).expanduser() if config.get("cache_dir") else default_cache_dir()
    )


def decoding(config: Mapping[str, Any]) -> Decoding:
    d = config["decoding"]
    return Decoding(
        greedy_max_tokens=d["greedy_max_tokens"],
        n_samples=d["n_samples"],
        sample_max_tokens=d["sample_max_tokens"],
        sampling=SamplingSettings(d["temperature"], d["top_k"], d["top_p"], d["min_p"]),
    )


# Snakemake's own `configfile:` in the Snakefile, relative to the working directory:
# a user's --configfile is laid over it, key by key.
DEFAULT_CONFIG = Path("config") / "config.yaml"


def _read_yaml(path: str | Path) -> dict[str, Any]:
    with Path(path).open(encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def overlay(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top` laid over `base` key by key, nested sections merged (as Snakemake does)."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = overlay(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_run_config(path: str | Path) -> tuple[dict[str, Any], list[str]]:
    """The config `snakemake TARGET --configfile path` run from here would use,
    validated with defaults filled, and the benchmark keys it inherits."""
    base = _read_yaml(DEFAULT_CONFIG) if DEFAULT_CONFIG.exists() else {}
    return validate(overlay(base, _read_yaml(path))), inherited_benchmark_keys([path])


def inherited_benchmark_keys(user_files: Sequence[str | Path]) -> list[str]:
    """Benchmark keys that come from config/config.yaml because no --configfile sets them."""
    user_files = [f for f in user_files if Path(f).resolve() != DEFAULT_CONFIG.resolve()]
    if not user_files or not DEFAULT_CONFIG.exists():
        return []
    user: dict[str, Any] = {}
    for path in user_files:
        user = overlay(user, _read_yaml(path))
    base = _read_yaml(DEFAULT_CONFIG)
    schema_defaults = validate({})
    # Only what differs from the schema's own default surprises a reader of the schema.
    return [
        key
        for key in inherited_keys(base, user, "benchmark")
        if _lookup_or_none(schema_defaults, key) != _lookup_or_none(base, key)
    ]


def inherited_keys(base: dict[str, Any], user: dict[str, Any], section: str) -> list[str]:
    """Dotted keys under `section` that `base` sets and `user` leaves out."""

    def leaves(tree: Any, prefix: str) -> list[str]:
        if not isinstance(tree, dict) or not tree:
            return [prefix]
        return [leaf for key, sub in tree.items() for leaf in leaves(sub, f"{prefix}.{key}")]

    def present(tree: Any, dotted: str) -> bool:
        for part in dotted.split(".")[1:]:
            if not isinstance(tree, dict) or part not in tree:
                return False
            tree = tree[part]
        return True

    if section not in base:
        return []
    return [key for key in leaves(base[section], section) if not present(user.get(section), key)]


def _lookup_or_none(config: dict[str, Any], dotted: str) -> Any:
    try:
        return lookup(config, dotted)
    except (KeyError, TypeError):
        return None


def lookup(config: dict[str, Any], dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = value[part]
    return value


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
