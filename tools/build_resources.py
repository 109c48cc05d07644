"""Merge the authored sources in resources/src/ into the shipped benchmark and corpus.

Option letters are assigned here (seeded), so that the correct letter is balanced
over A-E and authors never think about letters. Rerunning gives identical files.

Before anything is written, the sources must pass three checks (each lists every
question that fails, and the build stops):
- conflict target: each conflict passage points to the distractor it is labelled
  as supporting (`conflict_supports`), never to the correct option;
- near-duplicates: no two questions with near-identical stems or option sets;
- length balance: clean and conflict evidence cannot be told apart by length.

    python tools/build_resources.py                 # check, then write resources/
    python tools/build_resources.py --out DIR       # check, then write DIR/benchmark, DIR/corpus
    python tools/build_resources.py --check         # checks only, write nothing
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import statistics
import sys
from collections import Counter
from itertools import combinations
from pathlib import Path

from safescale.conditions import LABEL_KINDS, LETTERS

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "resources" / "src"
OUT = ROOT / "resources"
SEED = 20261126

# Thresholds of the checks (see resources/README.md, "Build checks").
DUPLICATE_STEM = 0.42  # Jaccard similarity of two stems' key terms
DUPLICATE_OPTIONS = 0.75  # share of options with a near-identical option in the other question
MEDIAN_GAP = 0.10  # clean and conflict median word counts within 10% of each other
PAIR_RATIO = (0.75, 4 / 3)  # conflict/clean word ratio allowed for any one question


class CheckError(Exception):
    """The sources fail one or more build checks; the message lists every failure."""


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def load_sources(src: Path = SRC) -> tuple[list[dict], list[dict]]:
    """(questions sorted by id, passages in file order) from the authored sources."""
    questions = sorted(
        (q for p in sorted(src.glob("questions_*.jsonl")) for q in _read_jsonl(p)),
        key=lambda q: q["qid"],
    )
    passages = [p for f in sorted(src.glob("corpus_*.jsonl")) for p in _read_jsonl(f)]
    return questions, passages


# ---------------------------------------------------------------- key terms
_STOPWORDS = """a about above after again against also an and are as at be because been
    before being below between both but by can could did do does doing during either
    even few for from further had has have having he her here hers him his how i if
    in into is it its itself just may me might more most much must my nor now of off
    on once one or other our out over own same she should since so some such than that
    the their them then there these they this those through thus to too under until up upon
    usually very was we were what when where whether which while who whom why will with
    within would you your often typically generally commonly mainly
    patient patients which"""
STOPWORDS = frozenset(_STOPWORDS.split())
_STEM_BOILERPLATE = """most appropriate next step initial first imaging examination study management
    diagnosis likely shows show presents presented undergoes has had what which correct
    statement according recommended best"""
STEM_BOILERPLATE = frozenset(_STEM_BOILERPLATE.split())


def _stem(word: str) -> str:
    for suffix in ("ies", "es", "s"):
        if word.endswith(suffix) and len(word) > len(suffix) + 3 and not word.endswith("ss"):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def key_terms(text: str) -> set[str]:
    """Lower-cased content words, light plural stemming; hyphenated codes such as
    'LR-4', 'PI-RADS' or 'T2-weighted' stay one term."""
    words = re.findall(r"[a-z0-9]+(?:[-.][a-z0-9]+)*", text.lower())
    return {_stem(w) for w in words if w not in STOPWORDS and (len(w) > 1 or w.isdigit())}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


# ---------------------------------------------------------------- checks
def _option_texts(q: dict) -> list[str]:
    return [q["correct"]] + [d["text"] for d in q["distractors"]]


def _lean(counts: Counter[str], a: set[str], b: set[str]) -> tuple[float, float]:
    """How often, on average, the passage uses the terms of `a` that `b` lacks, and
    the terms of `b` that `a` lacks (each term counted at most 3 times)."""

    def mean(terms: set[str]) -> float:
        return sum(min(counts[t], 3) for t in terms) / len(terms) if terms else 0.0

    return mean(a - b), mean(b - a)


def conflict_lean(q: dict) -> tuple[float, float, str | None]:
    """(labelled score, correct score, id of a distractor the passage favours over the
    labelled one or None), from key-term counts in the conflict passage. Terms shared
    by every option carry no signal and are left out."""
    words = re.findall(r"[a-z0-9]+(?:[-.][a-z0-9]+)*", q["evidence_conflict"].lower())
    counts = Counter(_stem(w) for w in words)
    terms = [key_terms(o) for o in _option_texts(q)]
    common = set.intersection(*terms)
    terms = [t - common for t in terms]
    labelled = 1 + q["conflict_supports"]
    lab, cor = _lean(counts, terms[labelled], terms[0])
    if not terms[labelled] - terms[0] and cor == 0:
        # the labelled option is the correct one minus a qualifier ("with" vs
        # "without gadolinium"): the passage leans to it by never using the qualifier
        lab = 1.0
    rival = None
    for i in range(1, len(terms)):
        if i != labelled:
            mine, theirs = _lean(counts, terms[labelled], terms[i])
            if theirs > mine:
                rival = _option_texts(q)[i]
                break
    return lab, cor, rival


def check_conflict_targets(questions: list[dict]) -> list[str]:
    """Each conflict passage must use the distinctive key terms of its labelled option
    more than those of the correct option, and no less than those of any other
    distractor."""
    problems = []
    for q in questions:
        i = q["conflict_supports"]
        if not 0 <= i < len(q["distractors"]):
            problems.append(f"{q['qid']}: conflict_supports={i} is not a distractor index")
            continue
        lab, cor, rival = conflict_lean(q)
        label = q["distractors"][i]["text"]
        if lab <= cor:
            problems.append(
                f"{q['qid']}: conflict passage leans to the correct option {q['correct']!r}"
                f" (term score {cor:.2f}) at least as much as to the labelled {label!r} ({lab:.2f})"
            )
        elif rival is not None:
            problems.append(
                f"{q['qid']}: conflict passage leans to the distractor {rival!r}"
                f" more than to the labelled {label!r}"
            )
    return problems


def _stem_terms(text: str) -> set[str]:
    """Key terms of a question stem without its boilerplate and numbers."""
    return {t for t in key_terms(text) if t not in STEM_BOILERPLATE and not t[0].isdigit()}


def option_set_similarity(a: list[str], b: list[str]) -> float:
    """Share of the options of both questions that have a near-identical option
    (key-term Jaccard 0.5 or more) in the other question."""
    ta, tb = [key_terms(x) for x in a], [key_terms(x) for x in b]
    matched = sum(max(jaccard(x, y) for y in tb) >= 0.5 for x in ta)
    matched += sum(max(jaccard(y, x) for x in ta) >= 0.5 for y in tb)
    return matched / (len(ta) + len(tb))


def near_duplicate_pairs(questions: list[dict]) -> list[tuple[str, str, float, float]]:
    """(qid, qid, stem similarity, option-set similarity) for pairs over a threshold."""
    stems = [_stem_terms(q["question"]) for q in questions]
    opts = [_option_texts(q) for q in questions]
    pairs = []
    for i, j in combinations(range(len(questions)), 2):
        s, o = jaccard(stems[i], stems[j]), option_set_similarity(opts[i], opts[j])
        if s >= DUPLICATE_STEM or o >= DUPLICATE_OPTIONS:
            pairs.append((questions[i]["qid"], questions[j]["qid"], s, o))
    return pairs


def check_near_duplicates(questions: list[dict]) -> list[str]:
    return [
        f"{a} ~ {b}: near-duplicate (stem similarity {s:.2f}, option-set similarity {o:.2f})"
        for a, b, s, o in near_duplicate_pairs(questions)
    ]


def evidence_lengths(questions: list[dict]) -> tuple[list[int], list[int]]:
    clean = [len(q["evidence_clean"].split()) for q in questions]
    conflict = [len(q["evidence_conflict"].split()) for q in questions]
    return clean, conflict


def check_length_balance(questions: list[dict]) -> list[str]:
    """Median word counts of clean and conflict evidence within MEDIAN_GAP of each
    other, and no single question's conflict/clean ratio outside PAIR_RATIO."""
    clean, conflict = evidence_lengths(questions)
    problems = []
    mc, mk = statistics.median(clean), statistics.median(conflict)
    if abs(mc - mk) > MEDIAN_GAP * max(mc, mk):
        problems.append(
            f"median evidence length: clean {mc} words, conflict {mk} words"
            f" (more than {MEDIAN_GAP:.0%} apart)"
        )
    lo, hi = PAIR_RATIO
    for q, a, b in zip(questions, clean, conflict, strict=True):
        if not lo <= b / a <= hi:
            problems.append(f"{q['qid']}: clean {a} words, conflict {b} words (ratio {b / a:.2f})")
    return problems


CHECKS = {
    "conflict target": check_conflict_targets,
    "near-duplicates": check_near_duplicates,
    "length balance": check_length_balance,
}


def run_checks(questions: list[dict]) -> dict[str, list[str]]:
    """{check name: problems} for every check that fails (empty when all pass)."""
    return {name: p for name, fn in CHECKS.items() if (p := fn(questions))}


def format_problems(failed: dict[str, list[str]]) -> str:
    return "\n".join(
        f"{name} check failed for {len(p)} item(s):\n" + "\n".join(f"  - {x}" for x in p)
        for name, p in failed.items()
    )


# ---------------------------------------------------------------- build
def assemble(questions: list[dict]) -> tuple[list[dict], list[dict], Counter[str]]:
    """(benchmark rows, gold rows, correct-letter counts), letters assigned with SEED."""
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
    return rows, gold, counts


def write(out: Path, rows: list[dict], gold: list[dict], passages: list[dict]) -> None:
    bench_dir = out / "benchmark"
    bench_dir.mkdir(parents=True, exist_ok=True)
    with (bench_dir / "radsafe_demo.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with (bench_dir / "gold_passages.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["question_id", "passage_id"])
        writer.writeheader()
        writer.writerows(gold)
    corpus_dir = out / "corpus"
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


def build(src: Path = SRC, out: Path = OUT, check: bool = True) -> str:
    """Check the sources (raising CheckError listing every failure), then write
    out/benchmark/{radsafe_demo,gold_passages}.csv and out/corpus/passages.jsonl."""
    questions, passages = load_sources(src)
    if check and (failed := run_checks(questions)):
        raise CheckError(format_problems(failed))
    rows, gold, counts = assemble(questions)
    write(out, rows, gold, passages)
    return f"{len(rows)} questions, {len(passages)} passages; correct letters {dict(counts)}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT, help="folder for benchmark/ and corpus/")
    ap.add_argument("--check", action="store_true", help="run the checks only, write nothing")
    args = ap.parse_args(argv)
    if args.check:
        failed = run_checks(load_sources()[0])
        print(format_problems(failed) if failed else "all checks pass")
        return 1 if failed else 0
    try:
        print(build(out=args.out))
    except CheckError as exc:
        print(f"build stopped, nothing written:\n{exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
