"""Resumable prediction files: one JSON line per question, appended as it completes.

Lines go to `<output>.partial` (flushed and fsynced per question); the real
output appears only by an atomic rename once every question is done, so
Snakemake never sees a partial file as complete. A rerun after a crash or kill
resumes from the partial file if it was written with the same run key
(prompts, model hash, decoding, seed); otherwise it starts over.

One writer per partial file: a job holds an exclusive lock on it from reading
to the final rename, so a rerun started while an orphaned job of a killed
Snakemake still writes refuses clearly instead of racing it.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from safescale.data.question import Question
from safescale.errors import OutputBusyError
from safescale.jsonio import write_jsonl

PARTIAL_SUFFIX = ".partial"


def _lock_holder(fd: int) -> str:
    """The pid holding a lock on the file behind `fd`, from /proc/locks (Linux)."""
    ino = os.fstat(fd).st_ino
    try:
        with open("/proc/locks", encoding="ascii") as fh:
            for line in fh:
                fields = line.split()
                if len(fields) > 5 and fields[5].rsplit(":", 1)[-1] == str(ino):
                    return f"process {fields[4]}"
    except OSError:
        pass
    return "another process"


@contextmanager
def locked_partial(path: Path) -> Iterator[TextIO]:
    """The partial file, opened for reading and rewriting under an exclusive lock."""
    while True:
        fh = path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fh.fileno())
            fh.close()
            raise OutputBusyError(
                f"{path} is being written by {holder}: probably an inference job of an "
                "earlier run whose Snakemake was killed while the job went on. Let it "
                "finish or stop it, then run again; this job changed nothing."
            ) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not renamed away by a writer that finished while we opened it
            break
        fh.close()
    try:
        yield fh
    finally:
        fh.close()  # releases the lock


def _read_partial(fh: TextIO, run_key: str) -> dict[str, dict]:
    fh.seek(0)
    done: dict[str, dict] = {}
    lines = fh.read().split("\n")
    try:
        header = json.loads(lines[0])
    except (json.JSONDecodeError, IndexError):
        return {}
    if header.get("run_key") != run_key:
        return {}
    for line in lines[1:]:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by the kill; that question is redone
        done[rec["question_id"]] = rec
    return done


class Progress:
    """Periodic progress lines (done, rate, ETA) for the job log."""

    def __init__(self, total: int, label: str, stream=sys.stderr, every_s: float = 10.0):
        self.total, self.label, self.stream, self.every_s = total, label, stream, every_s
        self.start = self.last = time.monotonic()
        self.done = 0

    def step(self) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self.last >= self.every_s or self.done == self.total:
            rate = self.done / max(now - self.start, 1e-9)
            eta = (self.total - self.done) / rate if rate else float("inf")
            print(
                f"[{self.label}] {self.done}/{self.total} questions, {rate:.2f}/s, ETA {eta:.0f}s",
                file=self.stream,
                flush=True,
            )
            self.last = now


@dataclass
class Task:
    """One prediction file to write: its (question, prompt record) items in output
    order, its path and the run key its partial file must carry to be resumed."""

    items: list[tuple[Question, dict]]
    output: Path
    run_key: str
    counts: dict[str, float] = field(
        default_factory=lambda: {"resumed": 0, "computed": 0, "seconds": 0.0, "cpu_seconds": 0.0}
    )


def run_resumable(
    items: Iterable[tuple[Question, dict]],
    output: str | Path,
    run_key: str,
    predict: Callable[[Question, dict], dict],
    label: str = "",
) -> dict[str, int]:
    """Write one prediction per (question, prompt record); resume a partial run."""
    task = Task(list(items), Path(output), run_key)
    run_resumable_together([task], predict, label)
    return {k: int(task.counts[k]) for k in ("resumed", "computed")}


def run_resumable_together(
    tasks: Sequence[Task], predict: Callable[[Question, dict], dict], label: str = ""
) -> None:
    """Write several prediction files question by question: each question's prompts of
    every task are answered one after the other (so prompts that share a prefix share
    its evaluation), and each file resumes on its own. Per-task counts, wall and CPU
    seconds of its predictions go to `task.counts`."""
    order = list(dict.fromkeys(q.question_id for t in tasks for q, _ in t.items))
    progress = Progress(len(order), label)
    with ExitStack() as stack:
        done, handles = [], []
        for task in tasks:
            partial = task.output.with_name(task.output.name + PARTIAL_SUFFIX)
            task.output.parent.mkdir(parents=True, exist_ok=True)
            fh = stack.enter_context(locked_partial(partial))
            kept = _read_partial(fh, task.run_key)
            # Rewrite the partial file with the valid lines we keep (drops a torn last line).
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps({"run_key": task.run_key}) + "\n")
            for q, _ in task.items:
                if q.question_id in kept:
                    fh.write(json.dumps(kept[q.question_id], ensure_ascii=False) + "\n")
            fh.flush()
            done.append(kept)
            handles.append(fh)
        by_question = [{q.question_id: (q, p) for q, p in t.items} for t in tasks]
        for qid in order:
            for task, kept, fh, items in zip(tasks, done, handles, by_question, strict=True):
                if qid not in items:
                    continue
                if qid in kept:
                    task.counts["resumed"] += 1
                    continue
                t0, cpu0 = time.perf_counter(), time.process_time()
                rec = predict(*items[qid])
                task.counts["seconds"] += time.perf_counter() - t0
                task.counts["cpu_seconds"] += time.process_time() - cpu0
                kept[qid] = rec
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
                task.counts["computed"] += 1
            progress.step()
        for task, kept in zip(tasks, done, strict=True):
            write_jsonl([kept[q.question_id] for q, _ in task.items], task.output)  # atomic
            task.output.with_name(task.output.name + PARTIAL_SUFFIX).unlink()
