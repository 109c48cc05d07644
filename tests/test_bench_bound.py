"""The run's token bound (perf.runbound) on a hand-made run folder: no model, exact arithmetic."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from safescale.perf.runbound import (
    bound_rows,
    read_job_seconds,
    read_jobs,
    token_bound_s,
    unique_prefix_tokens,
)

PEAK = {"prompt_tps_wall": 100.0, "decode_tps_wall": 10.0, "prompt_tps_cpu": 200.0,
        "decode_tps_cpu": 20.0}  # fmt: skip


def test_unique_prefix_tokens_counts_each_prefix_once():
    assert unique_prefix_tokens([]) == 0
    assert unique_prefix_tokens([[1, 2, 3], [1, 2, 4], [1, 2, 3]]) == 4  # 1, 12, 123, 124
    assert unique_prefix_tokens([[1, 2], [3, 2]]) == 4  # same token after other prefixes


def test_token_bound_seconds():
    assert token_bound_s(prompt_tokens=500, decode_tokens=20, prompt_tps=100, decode_tps=10) == 7
    assert math.isnan(token_bound_s(prompt_tokens=1, decode_tokens=1, prompt_tps=0, decode_tps=10))


def _write_run(root: Path, tsv: str | None = "s\th:m:s\tcpu_time\n12.0\t0:00:12\t1.0\n") -> Path:
    """A run folder with one model and two finished conditions."""
    results = root / "results"
    for condition, steps, prompts in (
        ("closed_book", 30, ["a", "b"]),
        ("clean_evidence", 10, ["c"]),
    ):
        pred = results / "predictions" / "m"
        pred.mkdir(parents=True, exist_ok=True)
        summary = {"n_ok": len(prompts), "resumed": 0, "seconds": 5.0, "cpu_seconds": 4.0,
                   "process_cpu_seconds": 9.0, "engine": {"decode_steps": steps}}  # fmt: skip
        (pred / f"{condition}.summary.json").write_text(json.dumps(summary))
        (results / "prompts" / "m").mkdir(parents=True, exist_ok=True)
        lines = [{"prompt": p, "status": "ok"} for p in prompts]
        lines.append({"prompt": "", "status": "skipped"})
        (results / "prompts" / "m" / f"{condition}.jsonl").write_text(
            "\n".join(json.dumps(x) for x in lines) + "\n"
        )
        if tsv is not None:
            bench = root / "benchmarks" / "inference" / "m"
            bench.mkdir(parents=True, exist_ok=True)
            (bench / f"{condition}.tsv").write_text(tsv)
    return results


def test_read_jobs_in_condition_order(tmp_path):
    jobs = read_jobs(_write_run(tmp_path))
    assert [j.condition for j in jobs] == ["closed_book", "clean_evidence"]
    first = jobs[0]
    assert (first.n_ok, first.decode_steps, first.loop_s) == (2, 30, 5.0)
    assert (first.job_s, first.loop_cpu_s, first.job_cpu_s) == (12.0, 4.0, 9.0)  # not cpu_time
    assert first.prompts == ("a", "b")  # the skipped prompt is not evaluated


def test_bound_rows_arithmetic(tmp_path):
    jobs = read_jobs(_write_run(tmp_path))
    tokens = {
        ("m", "closed_book"): [[1, 2, 3, 4], [1, 2, 5, 6]],  # 6 unique of 8
        ("m", "clean_evidence"): [[1, 2, 7]],  # 3 alone, 1 more next to closed_book
    }
    rows = bound_rows(jobs, tokens, {"m": PEAK})
    by = {r["condition"]: r for r in rows}
    assert list(by) == ["closed_book", "clean_evidence", "all"]
    cb = by["closed_book"]
    assert (cb["prompt_tokens"], cb["unique_prompt_tokens"], cb["decode_steps"]) == (8, 6, 30)
    assert cb["bound_s"] == pytest.approx(6 / 100 + 30 / 10)
    assert cb["bound_no_sharing_s"] == pytest.approx(8 / 100 + 30 / 10)
    assert cb["bound_cpu_s"] == pytest.approx(6 / 200 + 30 / 20)
    assert cb["job_over_bound"] == pytest.approx(12 / cb["bound_s"])
    assert cb["job_cpu_over_bound_cpu"] == pytest.approx(9 / cb["bound_cpu_s"])
    assert cb["loop_cpu_over_bound_cpu"] == pytest.approx(4 / cb["bound_cpu_s"])
    assert cb["bound_no_sharing_cpu_s"] == pytest.approx(8 / 200 + 30 / 20)
    assert cb["job_cpu_over_bound_no_sharing_cpu"] == pytest.approx(9 / (8 / 200 + 30 / 20))
    everything = by["all"]
    assert (everything["unique_prompt_tokens"], everything["decode_steps"]) == (7, 40)
    assert everything["job_s"] == 24 and everything["loop_s"] == 10
    assert everything["bound_s"] == pytest.approx(7 / 100 + 40 / 10)


def test_a_job_that_answered_two_conditions_counts_once(tmp_path):
    """A ranked-evidence job writes one summary per condition; its Snakemake
    benchmark file and process clock belong to the job, not to each condition."""
    results = _write_run(tmp_path, tsv=None)
    for condition in ("closed_book", "clean_evidence"):
        path = results / "predictions" / "m" / f"{condition}.summary.json"
        summary = json.loads(path.read_text())
        path.write_text(json.dumps({**summary, "job": "ranked_evidence"}))
    bench = tmp_path / "benchmarks" / "inference" / "m"
    bench.mkdir(parents=True)
    (bench / "ranked_evidence.tsv").write_text("s\th:m:s\tcpu_time\n20.0\t0:00:20\t1.0\n")
    jobs = read_jobs(results)
    rows = {
        r["condition"]: r
        for r in bound_rows(jobs, {("m", j.condition): [[1]] for j in jobs}, {"m": PEAK})
    }
    assert math.isnan(rows["closed_book"]["job_s"]) and math.isnan(rows["closed_book"]["job_cpu_s"])
    assert rows["all"]["job_s"] == 20.0 and rows["all"]["job_cpu_s"] == 9.0
    assert rows["all"]["loop_cpu_s"] == 8.0


def test_missing_benchmark_files_give_nan_not_zero(tmp_path):
    jobs = read_jobs(_write_run(tmp_path, tsv=None))
    rows = bound_rows(jobs, {("m", j.condition): [[1]] for j in jobs}, {"m": PEAK})
    assert all(math.isnan(r["job_s"]) and math.isnan(r["job_over_bound"]) for r in rows)


def test_bad_inputs_name_the_file(tmp_path):
    bad = tmp_path / "x.tsv"
    bad.write_text("seconds\n1\n")
    with pytest.raises(ValueError, match="x.tsv.*no column 's'"):
        read_job_seconds(bad)
    bad.write_text("s\tcpu_time\nabc\t1\n")
    with pytest.raises(ValueError, match="x.tsv: column 's'"):
        read_job_seconds(bad)
    results = _write_run(tmp_path / "run")
    summary = results / "predictions" / "m" / "closed_book.summary.json"
    summary.write_text(json.dumps({"n_ok": 1, "seconds": 1.0}))
    with pytest.raises(ValueError, match="closed_book.summary.json: no 'engine'"):
        read_jobs(results)
