"""Load a RadSaFE-style benchmark through a column mapping into canonical Questions.

Every problem is collected and raised together (file, row, column, what was
expected) before any model runs: the mapping's patterns first, then the file
itself (bytes, row lengths, columns), then every row that could be read.
"""

from __future__ import annotations

import json
import random
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safescale import conditions as C
from safescale.conditions import LABEL_KINDS, LETTERS
from safescale.data.question import OptionLabels, Question
from safescale.data.tables import cell_text, read_table
from safescale.errors import InputError, Problem
from safescale.jsonio import write_jsonl

_LETTER_RE = re.compile(r"^\(?([A-Ea-e])[.)]?$")
# The spellings of 0 and 1 that numeric columns produce (Parquet floats read "1.0").
_BINARY = {"1": 1, "1.0": 1, "0": 0, "0.0": 0}
# The study's questions have four or five options; benchmark.options changes it.
DEFAULT_OPTION_RANGE = (4, 5)
_PATTERN_FIELDS = {"option": ("letter", "i"), "label": ("letter", "i", "kind")}


def _config_problem(key: str, message: str) -> Problem:
    return Problem(f"config key benchmark.{key}", message)


@dataclass(frozen=True)
class ColumnMapping:
    """Where each canonical field lives in a user's table.

    `option` and `label` are patterns: `{letter}` is A-E, `{i}` is 1-5 and
    `{kind}` is the user's name for a label kind (see `label_names`).
    An evidence column mapped to None means the dataset has no such evidence.
    Construction checks the patterns, so a typo fails before any file is read.
    """

    question_id: str = "question_id"
    question: str = "question_text"
    correct: str = "correct_answer"
    option: str = "option_{letter}"
    label: str = "option_{i}_{kind}"
    evidence_clean: str | None = "evidence_clean"
    evidence_conflict: str | None = "evidence_conflict"
    meta: tuple[str, ...] = ()
    label_names: Mapping[str, str] = field(
        default_factory=lambda: {kind: kind for kind in LABEL_KINDS}
    )

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise InputError(problems)

    @classmethod
    def from_config(cls, columns: Mapping[str, Any]) -> ColumnMapping:
        data = dict(columns)
        if "meta" in data:
            data["meta"] = tuple(data["meta"] or ())
        if "label_names" in data:
            data["label_names"] = {**{k: k for k in LABEL_KINDS}, **data["label_names"]}
        return cls(**data)

    def option_column(self, letter: str) -> str:
        return self.option.format(letter=letter, i=LETTERS.index(letter) + 1)

    def label_column(self, letter: str, kind: str) -> str:
        return self.label.format(
            letter=letter, i=LETTERS.index(letter) + 1, kind=self.label_names[kind]
        )

    def problems(self) -> list[Problem]:
        """Patterns that name unknown placeholders or cannot tell their columns apart."""
        problems = [
            *_pattern_problems("option", self.option),
            *_pattern_problems("label", self.label),
        ]
        names = [self.label_names[kind] for kind in LABEL_KINDS]
        for kind, name in zip(LABEL_KINDS, names, strict=True):
            if names.index(name) != LABEL_KINDS.index(kind):
                other = LABEL_KINDS[names.index(name)]
                problems.append(
                    _config_problem(
                        f"columns.label_names.{kind}",
                        f"'{name}' is also the name of {other}; expected a different name "
                        "for each label kind",
                    )
                )
        if problems:
            return problems
        for key, pattern in (("option", self.option), ("label", self.label)):
            if not {"letter", "i"} & _placeholders(pattern):
                problems.append(
                    _config_problem(
                        f"columns.{key}",
                        f"pattern '{pattern}' has neither {{letter}} nor {{i}}, so the five "
                        "options would all read the same column",
                    )
                )
        if "kind" not in _placeholders(self.label):
            problems.append(
                _config_problem(
                    "columns.label",
                    f"pattern '{self.label}' has no {{kind}}, so high_risk, unsafe and "
                    "contradicts would all read the same column; expected e.g. "
                    "'{letter} {kind}' with label_names naming your columns",
                )
            )
        return problems or self._collisions()

    def _collisions(self) -> list[Problem]:
        """Two canonical fields that a mapping sends to the same column."""
        owner: dict[str, str] = {}
        problems = []
        fields: list[tuple[str, str | None]] = [
            ("columns.question_id", self.question_id),
            ("columns.question", self.question),
            ("columns.correct", self.correct),
            ("columns.evidence_clean", self.evidence_clean),
            ("columns.evidence_conflict", self.evidence_conflict),
            *((f"columns.option ({letter})", self.option_column(letter)) for letter in LETTERS),
            *(
                (f"columns.label ({letter}, {kind})", self.label_column(letter, kind))
                for letter in LETTERS
                for kind in LABEL_KINDS
            ),
        ]
        for key, column in fields:
            if column is None:
                continue
            if column in owner:
                problems.append(
                    _config_problem(
                        key,
                        f"maps to column '{column}', which {owner[column]} already uses; "
                        "expected one column per field",
                    )
                )
            owner.setdefault(column, f"benchmark.{key}")
        return problems


def _placeholders(pattern: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None}


def _pattern_problems(key: str, pattern: str) -> list[Problem]:
    allowed = _PATTERN_FIELDS[key]
    braces = ", ".join("{" + name + "}" for name in allowed)
    try:
        names = sorted(_placeholders(pattern))
    except ValueError as exc:
        return [
            _config_problem(
                f"columns.{key}",
                f"pattern '{pattern}' is malformed ({exc}); write a literal brace as {{{{ or }}}}",
            )
        ]
    unknown = [name for name in names if name not in allowed]
    if unknown:
        return [
            _config_problem(
                f"columns.{key}",
                f"pattern '{pattern}' uses {', '.join('{' + n + '}' for n in unknown)}; "
                f"the placeholders are {braces}",
            )
        ]
    sample = {"letter": "A", "i": 1, "kind": "x"}
    try:
        pattern.format(**sample)
    except (ValueError, TypeError) as exc:
        return [_config_problem(f"columns.{key}", f"pattern '{pattern}' cannot be filled ({exc})")]
    return []


@dataclass(frozen=True)
class CellRules:
    """What a row may contain beyond the mapping: label spellings and option counts.

    `label_values` maps extra spellings (compared case-insensitively) to 0 or 1;
    without it a label cell must read 0 or 1.
    """

    label_values: Mapping[str, int] = field(default_factory=dict)
    option_range: tuple[int, int] = DEFAULT_OPTION_RANGE

    def __post_init__(self) -> None:
        problems = []
        low, high = self.option_range
        if not 1 <= low <= high <= len(LETTERS):
            problems.append(
                _config_problem(
                    "options",
                    f"min {low} and max {high} are not a range within 1-{len(LETTERS)}; "
                    "expected 1 <= min <= max <= 5",
                )
            )
        for spelling, value in self.label_values.items():
            if not isinstance(spelling, str):
                problems.append(
                    _config_problem(
                        "label_values",
                        f"key {spelling!r} is not text: YAML reads unquoted yes/no/true/false/"
                        'on/off as booleans; quote it ("yes": 1)',
                    )
                )
            elif value not in (0, 1) or isinstance(value, bool):
                problems.append(
                    _config_problem(f"label_values.{spelling}", f"expected 0 or 1, got {value!r}")
                )
        if problems:
            raise InputError(problems)

    @classmethod
    def from_config(cls, benchmark: Mapping[str, Any]) -> CellRules:
        options = benchmark.get("options") or {}
        return cls(
            label_values=dict(benchmark.get("label_values") or {}),
            option_range=(
                options.get("min", DEFAULT_OPTION_RANGE[0]),
                options.get("max", DEFAULT_OPTION_RANGE[1]),
            ),
        )

    def label(self, value: Any) -> int | None:
        text = cell_text(value)
        if text in _BINARY:
            return _BINARY[text]
        lowered = {k.lower(): v for k, v in self.label_values.items()}
        return lowered.get(text.lower())

    def label_hint(self) -> str:
        if not self.label_values:
            return "other spellings need benchmark.label_values"
        return "or one of benchmark.label_values: " + ", ".join(map(repr, self.label_values))


def load_benchmark(
    path: str | Path,
    mapping: ColumnMapping | None = None,
    fmt: str = "auto",
    required_evidence: Iterable[str] = (),
    *,
    rules: CellRules | None = None,
) -> list[Question]:
    """Read, validate and convert; raise InputError listing every problem.

    `required_evidence` names canonical evidence fields ("evidence_clean",
    "evidence_conflict") that configured conditions need: an empty cell there
    is an error. A field whose column is mapped to None is not required: the
    conditions that need it are skipped and recorded as skipped instead.
    """
    mapping = mapping or ColumnMapping()
    rules = rules or CellRules()
    path = Path(path)
    table = read_table(path, fmt)
    src = str(path)
    problems = list(table.problems)
    column_problems = _check_columns(src, table.columns, mapping, rules)
    problems += column_problems
    missing = {p.column for p in column_problems}
    required = {f for f in required_evidence if getattr(mapping, f) is not None}
    questions: list[Question] = []
    seen: dict[str, int] = {}
    for rownum, row in enumerate(table.rows, start=1):
        if row is None:  # could not be split into fields; reported by read_table
            continue
        question, row_problems = _convert_row(src, rownum, row, mapping, rules, required, missing)
        problems.extend(row_problems)
        qid = cell_text(row.get(mapping.question_id))
        if qid and qid in seen:
            problems.append(
                Problem(
                    src,
                    f"duplicate question id; first seen in row {seen[qid]}",
                    row=rownum,
                    column=mapping.question_id,
                    record_id=qid,
                )
            )
        seen.setdefault(qid, rownum)
        if question is not None:
            questions.append(question)
    if not table.rows:
        problems.append(Problem(src, "no questions found; expected at least one data row"))
    if problems:
        raise InputError(problems)
    return questions


def required_evidence(conditions: Iterable[str]) -> list[str]:
    """The evidence fields that the configured conditions read."""
    return [C.EVIDENCE_FIELD[c] for c in conditions if c in C.EVIDENCE_FIELD]


def load_configured(
    benchmark: Mapping[str, Any], conditions: Sequence[str], path: str | Path | None = None
) -> list[Question]:
    """Every question of the file a config's `benchmark` section describes."""
    return load_benchmark(
        path or benchmark["path"],
        ColumnMapping.from_config(benchmark.get("columns") or {}),
        benchmark.get("format", "auto"),
        required_evidence(conditions),
        rules=CellRules.from_config(benchmark),
    )


def select(
    questions: Sequence[Question],
    *,
    limit: int | None,
    shuffle: bool,
    seed: int,
    stratify_by: str | None = None,
) -> list[Question]:
    """The run's slice: a seeded shuffle (if asked), then the first `limit` questions.

    With `stratify_by` (a meta column such as subspecialty) the limit is shared
    among its values in proportion to their counts (largest remainders, ties to
    the value seen first), so a small slice keeps the file's mix instead of
    whatever a shuffle happens to draw; the slice keeps the (shuffled) order.
    """
    ordered = list(questions)
    if shuffle:
        random.Random(seed).shuffle(ordered)
    if not limit or limit >= len(ordered):
        return ordered
    if not stratify_by:
        return ordered[:limit]
    strata: dict[str, list[Question]] = {}
    for q in ordered:
        if stratify_by not in q.meta:
            raise InputError(
                [
                    Problem(
                        "config benchmark.stratify_by",
                        f"{stratify_by!r} is not a meta column of question {q.question_id}; "
                        "list it in benchmark.columns.meta or set stratify_by: null",
                    )
                ]
            )
        strata.setdefault(str(q.meta[stratify_by]), []).append(q)
    quota = {key: limit * len(members) // len(ordered) for key, members in strata.items()}
    remainders = sorted(
        strata, key=lambda k: -(limit * len(strata[k]) % len(ordered))
    )  # stable: ties keep first-seen order
    for key in remainders[: limit - sum(quota.values())]:
        quota[key] += 1
    keep = {q.question_id for key, members in strata.items() for q in members[: quota[key]]}
    return [q for q in ordered if q.question_id in keep]


def select_configured(questions: Sequence[Question], config: Mapping[str, Any]) -> list[Question]:
    """The slice a run's config asks for (benchmark.limit/shuffle/stratify_by, seed)."""
    bench = config["benchmark"]
    return select(
        questions,
        limit=bench.get("limit"),
        shuffle=bool(bench.get("shuffle")),
        seed=config["seed"],
        stratify_by=bench.get("stratify_by"),
    )


def _check_columns(
    src: str, columns: list[str], mapping: ColumnMapping, rules: CellRules
) -> list[Problem]:
    present = set(columns)
    needed = [mapping.question_id, mapping.question, mapping.correct, *mapping.meta]
    needed += [c for c in (mapping.evidence_clean, mapping.evidence_conflict) if c]
    always = LETTERS[: rules.option_range[0]]
    # Label columns are required for every letter that has (or must have) an option column.
    for letter in LETTERS:
        option = mapping.option_column(letter)
        if letter in always:
            needed.append(option)
        if option in present or letter in always:
            needed += [mapping.label_column(letter, kind) for kind in LABEL_KINDS]
    return [
        Problem(src, "required column is missing (check the column mapping in config)", column=c)
        for c in dict.fromkeys(needed)
        if c not in present
    ]


def _convert_row(
    src: str,
    rownum: int,
    row: dict[str, Any],
    mapping: ColumnMapping,
    rules: CellRules,
    required: set[str],
    missing: set[str | None],
) -> tuple[Question | None, list[Problem]]:
    """One row's question, or every problem of the row (none about missing columns)."""
    qid = cell_text(row.get(mapping.question_id))
    problems: list[Problem] = []

    def problem(column: str, message: str) -> None:
        if column not in missing:
            problems.append(Problem(src, message, row=rownum, column=column, record_id=qid or None))

    if not qid:
        problem(mapping.question_id, "expected a non-empty question id")
    text = cell_text(row.get(mapping.question))
    if not text:
        problem(mapping.question, "expected non-empty question text")

    filled = [
        (letter, cell_text(row.get(mapping.option_column(letter))))
        for letter in LETTERS
        if mapping.option_column(letter) in row
    ]
    last = max((i for i, (_, t) in enumerate(filled) if t), default=-1)
    options = {letter: t for letter, t in filled[: last + 1]}
    for letter, t in options.items():
        if not t:
            problem(
                mapping.option_column(letter),
                f"gap in option letters: option {letter} is empty but a later option is filled",
            )
    options_known = not any(mapping.option_column(letter) in missing for letter in LETTERS)
    low, high = rules.option_range
    if options_known and not low <= len(options) <= high:
        first_wrong = LETTERS[min(len(options), high)]
        span = f"{low} to {high}" if low != high else str(low)
        problem(
            mapping.option_column(first_wrong),
            f"expected {span} options, found {len(options)} (benchmark.options sets the range)",
        )

    labels: dict[str, OptionLabels] = {}
    for letter, _ in filled:
        values = {}
        for kind in LABEL_KINDS:
            col = mapping.label_column(letter, kind)
            raw = cell_text(row.get(col))
            parsed = rules.label(raw)
            if letter in options and parsed is None:
                problem(col, f"expected a 0/1 label ({rules.label_hint()}), got {raw!r}")
            elif letter not in options and raw and parsed != 0:
                problem(col, f"expected an empty or 0 label: option {letter} is empty, got {raw!r}")
            values[kind] = parsed or 0
        if letter in options:
            labels[letter] = OptionLabels(**values)

    raw_correct = cell_text(row.get(mapping.correct))
    match = _LETTER_RE.match(raw_correct)
    correct = match.group(1).upper() if match else ""
    if options_known and correct not in options:
        allowed = "-".join([next(iter(options), "A"), list(options)[-1]]) if options else "A-E"
        problem(
            mapping.correct,
            f"expected the correct letter among the options ({allowed}), got {raw_correct!r}",
        )

    evidence: dict[str, str | None] = {}
    for fieldname in ("evidence_clean", "evidence_conflict"):
        col = getattr(mapping, fieldname)
        value = cell_text(row.get(col)) if col else ""
        evidence[fieldname] = value or None
        if fieldname in required and not value:
            problem(
                col,
                f"expected non-empty {fieldname.replace('_', ' ')} (a configured "
                "condition needs it)",
            )

    if problems or any(c in missing for c in (mapping.question_id, mapping.question)):
        return None, problems
    meta = {col: cell_text(row.get(col)) for col in mapping.meta}
    return (
        Question(
            question_id=qid,
            question=text,
            options=options,
            correct=correct,
            labels=labels,
            meta=meta,
            **evidence,
        ),
        [],
    )


def write_canonical(questions: Iterable[Question], path: str | Path) -> None:
    write_jsonl([q.to_dict() for q in questions], path)  # atomic: never half-written


def read_canonical(path: str | Path) -> list[Question]:
    with Path(path).open(encoding="utf-8") as fh:
        return [Question.from_dict(json.loads(line)) for line in fh if line.strip()]
