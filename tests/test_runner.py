"""Resumable prediction files: resume after a kill, and one writer per partial file
(real processes: an orphaned job of a killed parent and a second writer)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT

from safescale.data.question import OptionLabels, Question
from safescale.errors import OutputBusyError
from safescale.inference.runner import Task, locked_partial, run_resumable, run_resumable_together

WRITER = """
import os, sys, time
from safescale.data.question import OptionLabels, Question
from safescale.inference.runner import run_resumable

out, delay, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
labels = {"A": OptionLabels(), "B": OptionLabels()}
items = [(Question(f"q{i}", "?", {"A": "a", "B": "b"}, "A", labels), {}) for i in range(n)]

def predict(q, prompt):
    time.sleep(delay)
    return {"question_id": q.question_id, "pid": os.getpid()}

print(run_resumable(items, out, "key", predict))
"""
# Stands in for Snakemake: starts the job and waits for it; killing it orphans the job.
PARENT = """
import subprocess, sys
job = subprocess.Popen([sys.executable, *sys.argv[1:]])
print(job.pid, flush=True)
job.wait()
"""
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
}


def items(n: int):
    labels = {"A": OptionLabels(), "B": OptionLabels()}
    return [(Question(f"q{i}", "?", {"A": "a", "B": "b"}, "A", labels), {}) for i in range(n)]


def test_resumes_from_partial_and_drops_a_torn_line(tmp_path):
    out = tmp_path / "p.jsonl"
    partial = tmp_path / "p.jsonl.partial"
    partial.write_text(
        json.dumps({"run_key": "k"})
        + "\n"
        + json.dumps({"question_id": "q0", "v": "old"})
        + "\n"
        + '{"question_id": "q1", "v"'  # cut by the kill
    )
    calls = []

    def predict(q, prompt):
        calls.append(q.question_id)
        return {"question_id": q.question_id, "v": "new"}

    counts = run_resumable(items(3), out, "k", predict)
    assert counts == {"resumed": 1, "computed": 2} and calls == ["q1", "q2"]
    assert [r["v"] for r in map(json.loads, out.read_text().splitlines())] == ["old", "new", "new"]
    assert not partial.exists()


def test_files_answered_together_go_question_by_question_and_resume_alone(tmp_path):
    """Two conditions in one job: each question's prompts follow each other (so they
    can share a prefix); a file finished before a kill is not redone, the other resumes."""
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    second.with_name("b.jsonl.partial").write_text(
        json.dumps({"run_key": "kb"}) + "\n" + json.dumps({"question_id": "q0", "v": "old"}) + "\n"
    )
    calls = []

    def predict(q, prompt):
        calls.append((q.question_id, prompt["c"]))
        return {"question_id": q.question_id, "v": prompt["c"]}

    tasks = [
        Task([(q, {"c": "a"}) for q, _ in items(3)], first, "ka"),
        Task([(q, {"c": "b"}) for q, _ in items(3)], second, "kb"),
    ]
    run_resumable_together(tasks, predict)
    assert calls == [("q0", "a"), ("q1", "a"), ("q1", "b"), ("q2", "a"), ("q2", "b")]
    assert [t.counts["computed"] for t in tasks] == [3, 2]
    assert [t.counts["resumed"] for t in tasks] == [0, 1]
    assert all(t.counts["cpu_seconds"] >= 0 and t.counts["seconds"] > 0 for t in tasks)
    rows = [json.loads(x)["v"] for x in second.read_text().splitlines()]
    assert rows == ["old", "b", "b"] and not list(tmp_path.glob("*.partial"))


def test_other_run_key_starts_over(tmp_path):
    out = tmp_path / "p.jsonl"
    (tmp_path / "p.jsonl.partial").write_text(
        json.dumps({"run_key": "old"}) + "\n" + json.dumps({"question_id": "q0"}) + "\n"
    )
    counts = run_resumable(items(2), out, "new", lambda q, p: {"question_id": q.question_id})
    assert counts == {"resumed": 0, "computed": 2}


def test_second_writer_in_the_same_process_is_refused(tmp_path):
    partial = tmp_path / "p.jsonl.partial"
    with (
        locked_partial(partial),
        pytest.raises(OutputBusyError, match="is being written by process"),
    ):
        run_resumable(items(1), tmp_path / "p.jsonl", "k", lambda q, p: {})


def wait_for(condition, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_orphaned_job_keeps_its_output_and_a_rerun_is_refused(tmp_path):
    writer = tmp_path / "writer.py"
    writer.write_text(WRITER)
    out = tmp_path / "predictions.jsonl"
    partial = tmp_path / "predictions.jsonl.partial"
    n = 20
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(writer), str(out), "0.15", str(n)],
        env=ENV,
        stdout=subprocess.PIPE,
        text=True,
    )
    job_pid = int(parent.stdout.readline())
    wait_for(lambda: partial.exists() and len(partial.read_text().splitlines()) >= 3)
    os.kill(parent.pid, signal.SIGKILL)  # Snakemake killed; its job goes on
    parent.wait()
    os.kill(job_pid, 0)  # the orphan is alive

    rerun = subprocess.run(
        [sys.executable, str(writer), str(out), "0", str(n)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rerun.returncode != 0
    assert f"{partial} is being written by process {job_pid}" in rerun.stderr, rerun.stderr
    assert "OutputBusyError" in rerun.stderr and "FileNotFoundError" not in rerun.stderr

    wait_for(lambda: out.exists() and not partial.exists())
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["question_id"] for r in records] == [f"q{i}" for i in range(n)]
    assert {r["pid"] for r in records} == {job_pid}  # one writer, nothing lost or mixed
