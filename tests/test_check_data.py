"""What a user sees: malformed variants of a RadSaFE-style file through `safescale
check-data` and through a real Snakemake run of the data rule, asserted on the console."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

GOOD_CSV = ROOT / "tests" / "data" / "radsafe_style.csv"
GOOD_CONFIG = yaml.safe_load((ROOT / "tests" / "data" / "radsafe_style.yaml").read_text())
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
}


def lines_of(raw: bytes) -> list[bytes]:
    """CRLF-ended records (the quoted newlines inside cells are LF, so one record a line)."""
    return raw.split(b"\r\n")


def variant(tmp_path: Path, edit=None, columns: dict | None = None, **bench) -> Path:
    """A copy of the good file (bytes edited by `edit`) and a config for it; returns the config."""
    data = GOOD_CSV.read_bytes()
    csv_path = tmp_path / "bench.csv"
    csv_path.write_bytes(edit(data) if edit else data)
    config = json.loads(json.dumps(GOOD_CONFIG))
    config["benchmark"]["path"] = str(csv_path)
    config["benchmark"]["columns"].update(columns or {})
    config["benchmark"].update(bench)
    path = tmp_path / "my.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


def check_data(config: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "safescale.cli", "check-data", "--config", str(config)],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )


def set_cell(data: bytes, qid: str, column: str, value: bytes) -> bytes:
    """Replace one label cell of a question (label cells are the last, unquoted fields)."""
    lines = lines_of(data)
    header = lines[0].split(b",")
    first = next(i for i, line in enumerate(lines) if line.startswith(qid.encode() + b","))
    last = next(
        (i - 1 for i in range(first + 1, len(lines)) if lines[i].startswith(b"RS-")),
        len(lines) - 2,  # the file ends with a line break
    )
    fields = lines[last].split(b",")
    fields[len(fields) - len(header) + header.index(column.encode())] = value
    lines[last] = b",".join(fields)
    return b"\r\n".join(lines)


def test_good_file_passes_and_shows_the_slice(tmp_path):
    res = check_data(variant(tmp_path), tmp_path)
    assert res.returncode == 0, res.stderr
    assert "benchmark: all 6 questions of" in res.stdout and "(file order)" in res.stdout
    assert "OK: 6 questions valid; a run uses 6" in res.stdout


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: set_cell(d, "RS-002", "B Unsafe", b"yes"),
            ["row 2 (RS-002), column 'B Unsafe': expected a 0/1 label", "got 'yes'"],
        ),
        (
            # RS-002 keeps options A-B only; its other labels say 0.
            lambda d: d.replace(
                b"7 mmol,0.7 mmol,70 mmol,7 \xc2\xb5mol,", b"7 mmol,0.7 mmol,,,"
            ).replace(b",0,0,0,0,0,0,,,\r\nRS-003", b",0,0,0,0,0,0,0,0,0\r\nRS-003"),
            ["row 2 (RS-002), column 'Option C': expected 4 to 5 options, found 2"],
        ),
        (
            lambda d: d.replace(b"Which first test?", b"Which first test\xe9?").replace(
                b"RS-004,", b","
            ),
            [
                "row 1, column 'Question': text is not valid UTF-8",
                "row 4, column 'ID': expected a non-empty question id",
            ],
        ),
        (
            lambda d: b"\r\n".join(
                [*lines_of(d)[:3], lines_of(d)[3] + b",1", lines_of(d)[4][:40], *lines_of(d)[5:]]
            ),
            [
                "row 3: row 3 has 26 fields, the header has 25",
                "row 4: row 4 has 2 fields, the header has 25",
                "2 problems found in input",  # one line per row, not a message per label
            ],
        ),
        (
            lambda d: d.replace(b"Clean Evidence,", b"Evidence,", 1).replace(
                b"RS-005,", b"RS-001,"
            ),
            [
                "column 'Clean Evidence': required column is missing",
                "row 5 (RS-001), column 'ID': duplicate question id; first seen in row 1",
            ],
        ),
    ],
    ids=["word-label", "two-options", "latin1-and-row", "field-counts", "missing-column-and-row"],
)
def test_malformed_file_lists_every_problem(tmp_path, edit, expected):
    res = check_data(variant(tmp_path, edit), tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    for text in expected:
        assert text in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize(
    ("columns", "bench", "expected"),
    [
        (
            {"label": "{letter} High Risk"},
            {},
            "benchmark.columns.label: pattern '{letter} High Risk' has no {kind}",
        ),
        (
            {"option": "Option {leter}"},
            {},
            "benchmark.columns.option: pattern 'Option {leter}' uses {leter}",
        ),
        ({}, {"options": {"min": 2, "max": 5}, "label_values": {True: 1}}, "quote it"),
    ],
    ids=["label-without-kind", "placeholder-typo", "unquoted-yes"],
)
def test_bad_settings_are_named_before_reading(tmp_path, columns, bench, expected):
    res = check_data(variant(tmp_path, columns=columns, **bench), tmp_path)
    assert res.returncode == 1 and expected in res.stderr, res.stderr
    assert "KeyError" not in res.stderr and "Traceback" not in res.stderr


def snakemake(workdir: Path, config: Path) -> subprocess.CompletedProcess:
    """A real run of the data rule alone (`-n` would not run the job)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "results/data/benchmark.jsonl",
            "--configfile",
            str(config),
            "-s",
            str(ROOT / "Snakefile"),
            "-d",
            str(workdir),
            "--cores",
            "1",
        ],
        cwd=workdir,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_failed_data_rule_prints_its_problems_on_the_console(tmp_path):
    config = variant(tmp_path, lambda d: set_cell(d, "RS-001", "A Unsafe", b"true"))
    res = snakemake(tmp_path, config)
    console = res.stdout + res.stderr
    assert res.returncode != 0
    assert "Problems reported by the failed jobs:" in console, console[-3000:]
    assert "row 1 (RS-001), column 'A Unsafe': expected a 0/1 label" in console
    assert not (tmp_path / "results" / "data" / "benchmark.jsonl").exists()


def test_pattern_typo_stops_the_run_before_any_job(tmp_path):
    res = snakemake(tmp_path, variant(tmp_path, columns={"option": "Option {leter}"}))
    console = res.stdout + res.stderr
    assert res.returncode != 0 and "pattern 'Option {leter}' uses {leter}" in console, console
    assert "prepare_benchmark" not in console and not (tmp_path / "logs").exists()


def test_run_shows_slice_and_what_it_inherits_from_the_default_config(tmp_path):
    # Run from a copy of the repository's layout: Snakemake lays the user's file over
    # config/config.yaml, so the default's `limit` and `shuffle` apply unless set.
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    config = variant(tmp_path)
    mine = yaml.safe_load(config.read_text())
    del mine["benchmark"]["limit"]
    config.write_text(yaml.safe_dump(mine, allow_unicode=True))
    # The default stratifies by subspecialty; a file without that column is told so.
    res = snakemake(tmp_path, config)
    assert res.returncode != 0
    assert "stratify_by: 'subspecialty' is not among benchmark.columns.meta" in res.stderr
    assert not (tmp_path / "results").exists()
    mine["benchmark"]["stratify_by"] = None
    config.write_text(yaml.safe_dump(mine, allow_unicode=True))
    res = snakemake(tmp_path, config)
    console = res.stdout + res.stderr
    assert res.returncode == 0, console[-3000:]
    assert "benchmark: all 6 questions of" in console and "seeded shuffle, seed 42" in console
    assert "from config/config.yaml (not set in" in console, console
    default = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["benchmark"]
    inherited = f"benchmark.limit={default['limit']}"
    assert inherited in console and "benchmark.shuffle=True" in console
    summary = json.loads((tmp_path / "results/data/benchmark_summary.json").read_text())
    assert summary["n_questions_used"] == 6
    # check-data shows the same, from the same directory.
    res = check_data(config, tmp_path)
    assert inherited in res.stdout and res.returncode == 0, res.stderr
