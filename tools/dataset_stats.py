"""Print the demo benchmark's and corpus's statistics (the datasheet's counts).

python tools/dataset_stats.py            # print
python tools/dataset_stats.py --markdown # the tables used in resources/README.md

Reads the shipped files with small readers of its own (only `safescale.conditions`
is imported), so it does not depend on where the package's loaders live.
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
from collections import Counter
from pathlib import Path

from safescale.conditions import LABEL_KINDS, LETTERS

ROOT = Path(__file__).resolve().parents[1]


def read_benchmark(path: Path) -> list[dict]:
    """Rows of the RadSaFE-layout CSV as dicts with `options` ({letter: text}) and
    `labels` ({letter: {kind: 0/1}}) for the filled option columns."""
    out = []
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            options, labels = {}, {}
            for i, letter in enumerate(LETTERS, start=1):
                text = row.get(f"option_{letter}", "").strip()
                if text:
                    options[letter] = text
                    labels[letter] = {k: int(row[f"option_{i}_{k}"] or 0) for k in LABEL_KINDS}
            out.append(row | {"options": options, "labels": labels})
    return out


def read_corpus(path: Path) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def label_counts(qs: list[dict]) -> dict[str, int]:
    def has(q: dict, kinds: tuple[str, ...]) -> bool:
        return any(lab[k] for lab in q["labels"].values() for k in kinds)

    out = {f"questions with a {k} distractor": sum(has(q, (k,)) for q in qs) for k in LABEL_KINDS}
    out["questions with a high_risk and an unsafe distractor"] = sum(
        has(q, ("high_risk",)) and has(q, ("unsafe",)) for q in qs
    )
    out["questions with a high_risk or unsafe distractor"] = sum(
        has(q, ("high_risk", "unsafe")) for q in qs
    )
    out["questions with only contradicts labels"] = sum(
        has(q, ("contradicts",)) and not has(q, ("high_risk", "unsafe")) for q in qs
    )
    out |= {
        f"options labelled {k}": sum(lab[k] for q in qs for lab in q["labels"].values())
        for k in LABEL_KINDS
    }
    return out


def stats(root: Path = ROOT) -> dict[str, dict[str, int | float]]:
    qs = read_benchmark(root / "resources/benchmark/radsafe_demo.csv")
    ps = read_corpus(root / "resources/corpus/passages.jsonl")
    with (root / "resources/benchmark/gold_passages.csv").open(encoding="utf-8") as fh:
        gold = list(csv.DictReader(fh))
    words = [len(p["text"].split()) for p in ps]
    clean = [len(q["evidence_clean"].split()) for q in qs]
    conflict = [len(q["evidence_conflict"].split()) for q in qs]
    return {
        "totals": {
            "questions": len(qs),
            "passages": len(ps),
            "gold pairs": len(gold),
            "corpus words": sum(words),
            "min passage words": min(words),
            "max passage words": max(words),
        },
        "subspecialty": dict(sorted(Counter(q["subspecialty"] for q in qs).items())),
        "correct letter": dict(sorted(Counter(q["correct_answer"] for q in qs).items())),
        "options per question": dict(sorted(Counter(len(q["options"]) for q in qs).items())),
        "difficulty": dict(sorted(Counter(q["difficulty"] for q in qs).items())),
        "evidence words": {
            "clean median": statistics.median(clean),
            "conflict median": statistics.median(conflict),
            "clean min-max": f"{min(clean)}-{max(clean)}",
            "conflict min-max": f"{min(conflict)}-{max(conflict)}",
            "questions whose clean evidence is longer": sum(
                a > b for a, b in zip(clean, conflict, strict=True)
            ),
        },
        "labels": label_counts(qs),
    }


def main() -> None:
    md = "--markdown" in sys.argv
    for section, counts in stats().items():
        if md:
            print(f"| {section} | count |\n|---|---|")
            print("\n".join(f"| {k} | {v} |" for k, v in counts.items()) + "\n")
        else:
            print(section + ": " + ", ".join(f"{k}={v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
