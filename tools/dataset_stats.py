"""Print the demo benchmark's and corpus's statistics (the datasheet's counts).

python tools/dataset_stats.py            # print
python tools/dataset_stats.py --markdown # the tables used in resources/README.md
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from safescale.conditions import LABEL_KINDS
from safescale.data.benchmark import ColumnMapping, load_benchmark
from safescale.data.corpus import load_corpus, load_gold_map

ROOT = Path(__file__).resolve().parents[1]


def stats() -> dict[str, dict[str, int]]:
    qs = load_benchmark(
        ROOT / "resources/benchmark/radsafe_demo.csv",
        ColumnMapping(meta=("subspecialty", "difficulty")),
        required_evidence=["evidence_clean", "evidence_conflict"],
    )
    ps = load_corpus(ROOT / "resources/corpus/passages.jsonl")
    gold = load_gold_map(
        ROOT / "resources/benchmark/gold_passages.csv",
        {q.question_id for q in qs},
        {p.passage_id for p in ps},
    )
    words = [len(p.text.split()) for p in ps]
    labelled = {
        f"questions with a {k} distractor": sum(
            any(q.labels[x].get(k) for x in q.letters) for q in qs
        )
        for k in LABEL_KINDS
    }
    labelled |= {
        f"options labelled {k}": sum(q.labels[x].get(k) for q in qs for x in q.letters)
        for k in LABEL_KINDS
    }
    return {
        "totals": {
            "questions": len(qs),
            "passages": len(ps),
            "gold pairs": sum(map(len, gold.values())),
            "corpus words": sum(words),
            "min passage words": min(words),
            "max passage words": max(words),
        },
        "subspecialty": dict(sorted(Counter(q.meta["subspecialty"] for q in qs).items())),
        "correct letter": dict(sorted(Counter(q.correct for q in qs).items())),
        "options per question": dict(sorted(Counter(q.n_options for q in qs).items())),
        "difficulty": dict(sorted(Counter(q.meta["difficulty"] for q in qs).items())),
        "labels": labelled,
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
