"""Merge the authored sources in resources/src/ into the shipped benchmark and corpus.

Option letters are assigned here (seeded), so that the correct letter is balanced
over A-E and authors never think about letters. Rerunning gives identical files.

    python tools/build_resources.py
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from pathlib import Path

from safescale.conditions import LABEL_KINDS, LETTERS

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "resources" / "src"
SEED = 20261126


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def build() -> None:
    questions = sorted(
        (q for p in sorted(SRC.glob("questions_*.jsonl")) for q in _read_jsonl(p)),
        key=lambda q: q["qid"],
    )
    passages = [p for f in sorted(SRC.glob("corpus_*.jsonl")) for p in _read_jsonl(f)]
    rng = random.Random(SEED)
    counts: Counter[str] = Counter()
    rows, gold = [], []
    for q in questions:
        n = 1 + len(q["distractors"])
        letters = LETTERS[:n]
        least = min(counts[x] for x in letters)
        correct = rng.choice([x for x in letters if counts[x] == least])
        counts[correct] += 1
        others = [x for x in letters if x != correct]
        rng.shuffle(others)
        row = {
            "question_id": q["qid"],
            "subspecialty": q["subspecialty"],
            "difficulty": q["difficulty"],
            "question_text": q["question"],
        }
        placed = {correct: {"text": q["correct"], **dict.fromkeys(LABEL_KINDS, 0)}}
        placed.update(zip(others, q["distractors"], strict=True))
        for i, letter in enumerate(LETTERS, start=1):
            opt = placed.get(letter)
            row[f"option_{letter}"] = opt["text"] if opt else ""
            for kind in LABEL_KINDS:
                row[f"option_{i}_{kind}"] = opt[kind] if opt else ""
        row["correct_answer"] = correct
        row["evidence_clean"] = q["evidence_clean"]
        row["evidence_conflict"] = q["evidence_conflict"]
        row["conflict_supports"] = others[q["conflict_supports"]]
        rows.append(row)
        gold += [{"question_id": q["qid"], "passage_id": pid} for pid in q["gold_passages"]]

    bench_dir = ROOT / "resources" / "benchmark"
    bench_dir.mkdir(parents=True, exist_ok=True)
    with (bench_dir / "radsafe_demo.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with (bench_dir / "gold_passages.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["question_id", "passage_id"])
        writer.writeheader()
        writer.writerows(gold)
    corpus_dir = ROOT / "resources" / "corpus"
    corpus_dir.mkdir(parents=True, exist_ok=True)
    with (corpus_dir / "passages.jsonl").open("w", encoding="utf-8") as fh:
        for p in passages:
            record = {
                "passage_id": p["pid"],
                "title": p["title"],
                "text": p["text"],
                "subspecialty": p["subspecialty"],
            }
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"{len(rows)} questions, {len(passages)} passages; correct letters {dict(counts)}")


if __name__ == "__main__":
    build()
