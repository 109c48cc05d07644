"""`safescale check-data`: what a run would read, and every problem in it, before a run.

The same loader as the prepare_benchmark rule, on the config a run would use
(the user's file laid over config/config.yaml), printed where the user looks.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from safescale.config import DEFAULT_CONFIG, inherited_benchmark_keys, load_run_config, lookup
from safescale.data.benchmark import CellRules, ColumnMapping, load_configured, select_configured
from safescale.data.tables import read_table
from safescale.errors import InputError, Problem


def resolve_data_path(path: str, root: Path) -> str:
    """Config paths are relative to the working directory, else to the workflow's root."""
    p = Path(path).expanduser()
    return str(p if p.is_absolute() or p.exists() else root / p)


def count_rows(path: str, fmt: str) -> int | None:
    """Data rows in the file (None if it cannot be read at all)."""
    try:
        return len(read_table(path, fmt).rows)
    except (InputError, OSError, ValueError):
        return None


def slice_lines(
    config: dict[str, Any], *, n_in_file: int | None, inherited: list[str], user_files: list[str]
) -> list[str]:
    """Which questions a run uses, and which of those settings the user did not write."""
    bench = config["benchmark"]
    total = "?" if n_in_file is None else str(n_in_file)
    limit = bench["limit"]
    if limit and (n_in_file is None or limit < n_in_file):
        used = f"{limit} of {total}"
    else:
        used = f"all {total}"
    order = f"seeded shuffle, seed {config['seed']}" if bench["shuffle"] else "file order"
    if bench.get("stratify_by") and limit and (n_in_file is None or limit < n_in_file):
        order += f", stratified by {bench['stratify_by']}"
    lines = [f"benchmark: {used} questions of {bench['path']} ({order})"]
    if inherited:
        names = ", ".join(str(f) for f in user_files)
        settings = ", ".join(f"{key}={lookup(config, key)!r}" for key in inherited)
        lines.append(f"  from {DEFAULT_CONFIG} (not set in {names}): {settings}")
    return lines


def check_data(config_path: str, root: Path) -> tuple[bool, list[str]]:
    """(ok, lines to print): the slice, then every problem of mapping and file."""
    config, inherited = load_run_config(config_path)
    bench = config["benchmark"]
    path = resolve_data_path(bench["path"], root)
    lines = slice_lines(
        {**config, "benchmark": {**bench, "path": path}},
        n_in_file=count_rows(path, bench["format"]),
        inherited=inherited,
        user_files=[config_path],
    )
    try:
        questions = load_configured(bench, config["conditions"], path=path)
    except InputError as exc:
        return False, [*lines, str(exc)]
    chosen = select_configured(questions, config)
    lines.append(f"OK: {len(questions)} questions valid; a run uses {len(chosen)}")
    return True, lines


def check_mapping(benchmark: dict[str, Any]) -> None:
    """Raise InputError for a mapping or cell rule that cannot work (before any job runs)."""
    mapping = ColumnMapping.from_config(benchmark.get("columns") or {})
    CellRules.from_config(benchmark)
    stratum = benchmark.get("stratify_by")
    if stratum and stratum not in mapping.meta:
        raise InputError(
            [
                Problem(
                    "config benchmark.stratify_by",
                    f"{stratum!r} is not among benchmark.columns.meta "
                    f"({', '.join(mapping.meta) or 'none'}); add it there or set stratify_by: null",
                )
            ]
        )


def run_start_lines(config: dict[str, Any], user_files: list[str]) -> list[str]:
    """What a run prints first: its benchmark slice and the settings it inherited."""
    bench = config["benchmark"]
    return slice_lines(
        config,
        n_in_file=count_rows(bench["path"], bench["format"]),
        inherited=inherited_benchmark_keys(user_files),
        user_files=user_files,
    )


# The last line of a job log that ended in one of the package's own errors.
_ERROR_LINE = re.compile(r"^safescale\.errors\.(\w+): ", re.M)


def problems_in_logs(log_dir: Path, since: float) -> list[str]:
    """The error message (every listed problem) of each job log written since `since`
    that ended in a safescale error, so the console shows it rather than a traceback."""
    lines: list[str] = []
    for log in sorted(log_dir.rglob("*.log")) if log_dir.is_dir() else []:
        if log.stat().st_mtime < since:
            continue
        text = log.read_text(encoding="utf-8", errors="replace")
        found = list(_ERROR_LINE.finditer(text))
        if found:
            last = found[-1]
            message = text[last.end() :].rstrip()
            lines += [f"{last.group(1)} in {log}:", *message.splitlines()]
    return lines
