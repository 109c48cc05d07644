"""Command line of the speed benchmark: python -m safescale.perf --config ... (make bench)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import safescale.perf as perf


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m safescale.perf", description=perf.__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--models", help="comma-separated registry names (default: config's)")
    parser.add_argument(
        "--conditions",
        help="comma-separated (default: closed_book,clean_evidence[,standard_rag if retrieved])",
    )
    parser.add_argument("--samples", type=int, help="SC samples (default: the config's)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="raw-throughput passes")
    parser.add_argument(
        "--results",
        default="results",
        help="the workflow's results folder: retrieval inputs and, if it holds a finished "
        "run, the run whose token bound is measured (make bench RUN=...)",
    )
    parser.add_argument("--naive", action="store_true", help="also the cache-free baseline")
    parser.add_argument(
        "--out",
        default="results/bench/bench.json",
        help="the report; conditions.csv, run_bound.csv and bench.png go beside it",
    )
    args = parser.parse_args(argv)

    from safescale.config import load_config
    from safescale.jsonio import write_json
    from safescale.perf.outputs import write_outputs

    config = load_config(args.config)
    settings = perf.BenchSettings(
        questions=args.questions,
        threads=args.threads,
        n_batch=config["inference"]["n_batch"],
        repeats=args.repeats,
        naive=args.naive,
    )

    def split(s: str | None) -> list[str] | None:
        return [x.strip() for x in s.split(",") if x.strip()] if s else None

    report = perf.run(
        config,
        split(args.models),
        split(args.conditions),
        settings,
        Path(args.results),
        args.samples,
    )
    print(perf.format_report(report))
    write_json(report, args.out)
    written = write_outputs(report, Path(args.out).parent)
    print(f"\nwrote {args.out}, " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
