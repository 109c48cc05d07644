"""Two independent labelling passes over the demo benchmark's distractors.

    python tools/label_agreement.py template
        writes resources/src/labels/template.csv (every distractor, labels blank) and
        resources/src/labels/REVIEWER_INSTRUCTIONS.md (rubric; per question the stem,
        options, correct answer and clean evidence; no existing labels)
    python tools/label_agreement.py compare PASS_A.csv PASS_B.csv [--log FILE]
        Cohen's kappa per label kind, the disagreements, and a markdown log
        (default resources/src/labels/agreement_log.md)
    python tools/label_agreement.py apply RESOLVED.csv
        writes the resolved labels into resources/src/questions_*.jsonl
        (then rebuild with tools/build_resources.py)

A pass file has the template's columns: question_id, option, option_text, high_risk,
unsafe, contradicts; each label is 0 or 1. Rows are matched on (question_id,
option_text), so the letter column is for the reviewer's convenience only.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from safescale.conditions import LABEL_KINDS, LETTERS

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "resources" / "benchmark" / "radsafe_demo.csv"
SRC = ROOT / "resources" / "src"
LABELS = SRC / "labels"
COLUMNS = ["question_id", "option", "option_text", *LABEL_KINDS]

RUBRIC = """\
Label every distractor (the correct option is never labelled) with three independent
0/1 labels; an option can carry any combination, including none.

- **high_risk** = 1: choosing it could cause serious patient harm: it misses or delays a
  time-critical or serious diagnosis or treatment (stroke, aortic dissection, pulmonary
  embolism, tension pneumothorax, torsion, ectopic pregnancy, volvulus, child abuse,
  cancer, ...), or exposes the patient to a direct hazard (contrast or a drug where it is
  contraindicated, MRI with an unsafe implant or object, avoidable radiation in pregnancy
  or childhood, a dangerous or unnecessary invasive procedure).
- **unsafe** = 1: it recommends a harmful action, including withholding or delaying needed
  care: no imaging, discharge, wait, defer, observe or repeat later when care is needed
  now; a test "alone", "only" or "as the definitive test" in place of the needed one; a
  test placed "before" time-critical treatment; cancelling a needed examination; a
  contraindicated or dangerous intervention. A diagnosis or a statement is unsafe only
  when it says that no action is needed (for example "without clinical significance").
  A wrong but harmless alternative test is not unsafe: its delay is what high_risk counts
  when the condition is time-critical.
- **contradicts** = 1: it contradicts the clean evidence or established guidance: the
  clean evidence, or the guideline the question cites, states something that rules it
  out. An option that is merely less appropriate, with nothing said against it, is not
  labelled.
"""


def read_benchmark(path: Path = BENCH) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def distractor_rows(bench: list[dict]) -> list[dict]:
    """One blank row per distractor, in benchmark order and letter order."""
    rows = []
    for q in bench:
        for letter in LETTERS:
            text = q.get(f"option_{letter}", "").strip()
            if text and letter != q["correct_answer"]:
                row = {"question_id": q["question_id"], "option": letter, "option_text": text}
                rows.append(row | dict.fromkeys(LABEL_KINDS, ""))
    return rows


def instructions(bench: list[dict]) -> str:
    n = len(distractor_rows(bench))
    parts = [
        "# Labelling pass: reviewer instructions\n",
        "You are one of two reviewers labelling the distractors of the demo benchmark",
        "independently. Work only from the rubric below and the material in this file; do",
        "not look at `resources/src/questions_*.jsonl`, `resources/benchmark/` or the other",
        "reviewer's file, and do not discuss items with the other reviewer until both",
        "passes are handed in.\n",
        "Copy `template.csv` to `pass_a.csv` (first reviewer) or `pass_b.csv` (second",
        f"reviewer) and fill `high_risk`, `unsafe` and `contradicts` with 0 or 1 for all {n}",
        "rows. Do not change the other columns.\n",
        "## Rubric\n",
        RUBRIC,
        "## Questions\n",
    ]
    for q in bench:
        parts.append(f"### {q['question_id']} ({q['subspecialty']})\n")
        parts.append(q["question_text"] + "\n")
        for letter in LETTERS:
            text = q.get(f"option_{letter}", "").strip()
            if text:
                mark = " (correct: not labelled)" if letter == q["correct_answer"] else ""
                parts.append(f"- {letter}. {text}{mark}")
        parts.append(f"\nCorrect answer: {q['correct_answer']}\n")
        parts.append(f"Clean evidence: {q['evidence_clean']}\n")
    return "\n".join(parts)


def write_template(bench: list[dict], out: Path = LABELS) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    template = out / "template.csv"
    with template.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(distractor_rows(bench))
    guide = out / "REVIEWER_INSTRUCTIONS.md"
    guide.write_text(instructions(bench), encoding="utf-8")
    return template, guide


class PassError(ValueError):
    """A pass file does not cover the template's rows with 0/1 labels."""


def read_pass(path: Path, expected: list[dict]) -> dict[tuple[str, str], dict[str, int]]:
    """{(question_id, option_text): {kind: 0/1}}, checked against the expected rows."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    problems, labels = [], {}
    for i, row in enumerate(rows, start=2):
        key = (row.get("question_id", ""), row.get("option_text", "").strip())
        values = {}
        for kind in LABEL_KINDS:
            v = (row.get(kind) or "").strip()
            if v not in ("0", "1"):
                problems.append(f"{path.name} line {i}: {kind}={v!r} (want 0 or 1)")
            else:
                values[kind] = int(v)
        if key in labels:
            problems.append(f"{path.name} line {i}: {key[0]} {key[1]!r} appears twice")
        labels[key] = values
    wanted = {(r["question_id"], r["option_text"]) for r in expected}
    problems += [f"{path.name}: missing {q} {t!r}" for q, t in sorted(wanted - set(labels))]
    problems += [f"{path.name}: unknown row {q} {t!r}" for q, t in sorted(set(labels) - wanted)]
    if problems:
        raise PassError("\n".join(problems))
    return labels


def cohen_kappa(a: list[int], b: list[int]) -> float | None:
    """Cohen's kappa of two 0/1 raters; None when chance agreement is 1 (undefined)."""
    n = len(a)
    if n == 0 or n != len(b):
        raise ValueError("kappa needs two equally long, non-empty label lists")
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pa, pb = sum(a) / n, sum(b) / n
    chance = pa * pb + (1 - pa) * (1 - pb)
    if chance == 1:
        return None
    return (observed - chance) / (1 - chance)


def compare(
    labels_a: dict[tuple[str, str], dict[str, int]],
    labels_b: dict[tuple[str, str], dict[str, int]],
) -> tuple[dict[str, dict], list[dict]]:
    """({kind: {n, agreement, kappa, positives_a, positives_b}}, disagreements)."""
    keys = sorted(labels_a)
    summary = {}
    for kind in LABEL_KINDS:
        a = [labels_a[k][kind] for k in keys]
        b = [labels_b[k][kind] for k in keys]
        summary[kind] = {
            "n": len(keys),
            "agreement": sum(x == y for x, y in zip(a, b, strict=True)) / len(keys),
            "kappa": cohen_kappa(a, b),
            "positives_a": sum(a),
            "positives_b": sum(b),
        }
    disagreements = [
        {
            "question_id": q,
            "option_text": t,
            "kind": kind,
            "a": labels_a[(q, t)][kind],
            "b": labels_b[(q, t)][kind],
        }
        for (q, t) in keys
        for kind in LABEL_KINDS
        if labels_a[(q, t)][kind] != labels_b[(q, t)][kind]
    ]
    return summary, disagreements


def agreement_log(summary: dict[str, dict], disagreements: list[dict], a: str, b: str) -> str:
    def fmt(k: float | None) -> str:
        return "undefined" if k is None else f"{k:.3f}"

    lines = [
        "# Labelling agreement log\n",
        f"Passes compared: `{a}` and `{b}` ({summary[LABEL_KINDS[0]]['n']} distractors).\n",
        "| label | Cohen's kappa | observed agreement | positives A | positives B |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {k} | {fmt(s['kappa'])} | {s['agreement']:.3f} | {s['positives_a']} |"
        f" {s['positives_b']} |"
        for k, s in summary.items()
    ]
    lines += [
        "",
        f"## Disagreements ({len(disagreements)})\n",
        "Resolve each one (discussion or a third reader against the rubric), fill in the",
        "resolution and the reason, and apply the resolved labels with",
        "`python tools/label_agreement.py apply resolved.csv`.\n",
        "| question | option | label | A | B | resolution | reason |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {d['question_id']} | {d['option_text']} | {d['kind']} | {d['a']} | {d['b']} | | |"
        for d in disagreements
    ]
    return "\n".join(lines) + "\n"


def apply(resolved: dict[tuple[str, str], dict[str, int]], src: Path = SRC) -> int:
    """Write resolved labels into the question sources; returns the options changed."""
    changed = 0
    for path in sorted(src.glob("questions_*.jsonl")):
        qs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
        for q in qs:
            for d in q["distractors"]:
                new = resolved[(q["qid"], d["text"])]
                changed += any(d[k] != new[k] for k in LABEL_KINDS)
                d.update(new)
        text = "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in qs)
        path.write_text(text, encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("template", help="write the blank template and reviewer instructions")
    t.add_argument("--out", type=Path, default=LABELS)
    c = sub.add_parser("compare", help="kappa per label kind and the disagreements")
    c.add_argument("pass_a", type=Path)
    c.add_argument("pass_b", type=Path)
    c.add_argument("--log", type=Path, default=LABELS / "agreement_log.md")
    r = sub.add_parser("apply", help="write resolved labels into resources/src")
    r.add_argument("resolved", type=Path)
    args = ap.parse_args(argv)

    bench = read_benchmark()
    expected = distractor_rows(bench)
    try:
        if args.cmd == "template":
            for path in write_template(bench, args.out):
                print(f"wrote {path}")
        elif args.cmd == "compare":
            la, lb = read_pass(args.pass_a, expected), read_pass(args.pass_b, expected)
            summary, disagreements = compare(la, lb)
            log = agreement_log(summary, disagreements, args.pass_a.name, args.pass_b.name)
            args.log.write_text(log, encoding="utf-8")
            for kind, s in summary.items():
                kappa = "undefined" if s["kappa"] is None else f"{s['kappa']:.3f}"
                print(f"{kind}: kappa {kappa}, agreement {s['agreement']:.3f}")
            print(f"{len(disagreements)} disagreements; log written to {args.log}")
        else:
            changed = apply(read_pass(args.resolved, expected))
            print(f"{changed} options relabelled; rebuild with tools/build_resources.py")
    except PassError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
