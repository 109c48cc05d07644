"""Command line for tasks outside the DAG.

python -m safescale.cli check-data --config my.yaml   # validate the benchmark first
python -m safescale.cli fetch-models --config my.yaml
"""

from __future__ import annotations

import argparse
import sys

import yaml

from safescale.config import ROOT, cache_dir, load_config, selected_models
from safescale.data.models import fetch_model
from safescale.errors import ModelError


def fetch_models(config_path: str) -> int:
    config = load_config(config_path)
    for spec in selected_models(config):
        try:
            path, digest = fetch_model(spec, cache_dir(config))
        except ModelError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"{spec.name}: {path} sha256={digest}")
    return 0


def check_data_command(config_path: str) -> int:
    """Print the run's benchmark slice and every problem of its file; 1 if there are any."""
    from snakemake.exceptions import WorkflowError

    from safescale.data.check import check_data

    try:
        ok, lines = check_data(config_path, ROOT)
    except (OSError, yaml.YAMLError, WorkflowError) as exc:
        print(f"error: config {config_path}: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines), file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="safescale")
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch-models", help="download, assemble and verify model weights")
    fetch.add_argument("--config", default="config/config.yaml")
    check = sub.add_parser(
        "check-data",
        help="validate the benchmark file a run with this config would read; list every problem",
    )
    check.add_argument("--config", default="config/config.yaml")
    args = parser.parse_args(argv)
    if args.command == "fetch-models":
        return fetch_models(args.config)
    if args.command == "check-data":
        return check_data_command(args.config)
    return 2


if __name__ == "__main__":
    sys.exit(main())
