"""Command line for setup tasks outside the DAG: `python -m safescale.cli fetch-models`."""

from __future__ import annotations

import argparse
import sys

from safescale.config import cache_dir, load_config, selected_models
from safescale.data.models import ModelError, fetch_model


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="safescale")
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch-models", help="download, assemble and verify model weights")
    fetch.add_argument("--config", default="config/config.yaml")
    args = parser.parse_args(argv)
    if args.command == "fetch-models":
        return fetch_models(args.config)
    return 2


if __name__ == "__main__":
    sys.exit(main())
