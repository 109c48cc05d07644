"""Confidence as a safety gate: selective answering and the risk-coverage trade-off.

A deployed system can defer a question to a radiologist whenever its
confidence is below a threshold. This module measures, per (model,
condition), how many errors such a gate avoids and how many questions it
still answers: the tables over the tidy frame. The curve math (tie rule,
AURC, oracle bound, coverage at risk) is in :mod:`safescale.analysis.riskcoverage`;
definitions and how to read the outputs are in ``docs/GATE.md``.

Conventions
-----------
* ``error`` is a 0/1 vector over *all* questions of the cell. NULL answers
  (model abstentions) are answered-and-wrong for ``any_error`` and never a
  ``high_risk`` or ``unsafe`` error (:func:`gate_errors`).
* Bootstrap: question-level resampling counts from
  :func:`safescale.analysis.bootstrap.resample_counts` over the *sorted* union of
  question ids of the table; every cell, signal and risk uses the same counts,
  so all differences are paired (with the metrics' replicates too). A resampled
  question that appears twice is tied with itself, so counts give exactly the
  curve of the resampled data set.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from safescale.analysis.bootstrap import (
    DEFAULT_B,
    DEFAULT_LEVEL,
    DEFAULT_SEED,
    bootstrap_p_value,
    resample_counts,
)
from safescale.analysis.multiplicity import add_adjusted
from safescale.analysis.riskcoverage import (
    DEFAULT_MATCHED_COVERAGE,
    DEFAULT_TARGET_RISK,
    curve_summaries,
    risk_coverage_curve,
)
from safescale.conditions import CLEAN_EVIDENCE, STANDARD_RAG

# --------------------------------------------------------------------------
# The one table pairing each confidence signal with the answer it gates.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class GateSignal:
    """A confidence column and the answer whose errors it is supposed to predict."""

    column: str  # confidence column of the tidy table
    answer: str  # human name of the gated answer
    letter: str  # column holding that answer's letter (null = abstention)
    prefix: str  # prefix of that answer's correctness/label columns


SIGNALS: dict[str, GateSignal] = {
    # 1 - normalised entropy of the 20 SC samples; gates the SC majority letter.
    "sc_confidence": GateSignal("sc_confidence", "sc_majority", "sc_majority", "sc"),
    # exact first-token probability of the greedy letter; gates the greedy letter.
    "prob_chosen": GateSignal("prob_chosen", "greedy", "greedy_letter", "greedy"),
    # top-1 minus top-2 exact letter probability; gates the greedy letter.
    "prob_margin": GateSignal("prob_margin", "greedy", "greedy_letter", "greedy"),
}

# Risk kind -> suffix of the 0/1 column; ``any_error`` is 1 - ``{prefix}_correct``.
RISKS: dict[str, str] = {
    "high_risk": "high_risk",
    "any_error": "correct",
    "unsafe": "unsafe",
}


CELL_KEYS: tuple[str, str] = ("model", "condition")

# Multiplicity families: each p column is adjusted (Holm, BH) within one risk kind, over
# models, conditions and signal pairs (signal contrasts) or over models and signals for
# one condition pair (condition contrasts). Definitions: docs/METRICS.md.
SIGNAL_CONTRAST_FAMILY: tuple[str, ...] = ("risk_kind",)
CONDITION_CONTRAST_FAMILY: tuple[str, ...] = ("risk_kind", "condition_a", "condition_b")


def _with_adjusted(
    table: pd.DataFrame, quantities: Sequence[str], family: Sequence[str]
) -> pd.DataFrame:
    """``{q}_p_holm`` and ``{q}_p_bh`` right after each ``{q}_p``, adjusted per family."""
    columns = list(table.columns)
    for quantity in quantities:
        p_column = f"{quantity}_p"
        adjusted = add_adjusted(table, p_column, family)
        at = columns.index(p_column) + 1
        for method in ("holm", "bh"):
            table[f"{p_column}_{method}"] = adjusted[f"p_{method}"]
        columns[at:at] = [f"{p_column}_holm", f"{p_column}_bh"]
    return table[columns]


def percentile_ci(values: np.ndarray, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval; NaN when there are no finite replicates."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (np.nan, np.nan)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


# --------------------------------------------------------------------------
# Tidy-table level
# --------------------------------------------------------------------------


def gate_errors(frame: pd.DataFrame, signal: str, risk: str) -> np.ndarray:
    """0/1 error vector of the answer that ``signal`` gates, for risk kind ``risk``.

    NULL answers (null letter, or null correctness from failed records) are
    wrong for ``any_error`` and never ``high_risk``/``unsafe``: there is no
    chosen option whose label could apply.
    """
    spec = SIGNALS[signal]
    if risk not in RISKS:
        raise KeyError(f"unknown risk kind {risk!r}; choose from {sorted(RISKS)}")
    null = (
        frame[spec.letter].isna().to_numpy() if spec.letter in frame else np.zeros(len(frame), bool)
    )
    if risk == "any_error":
        correct = pd.to_numeric(frame[f"{spec.prefix}_correct"], errors="coerce")
        err = 1.0 - correct.fillna(0.0).to_numpy(dtype=float)
        err[null] = 1.0
    else:
        lab = pd.to_numeric(frame[f"{spec.prefix}_{RISKS[risk]}"], errors="coerce")
        err = lab.fillna(0.0).to_numpy(dtype=float)
        err[null] = 0.0
    return err


@dataclass
class _CellResult:
    model: str
    condition: str
    signal: str
    risk: str
    available: bool
    note: str
    n_questions: int
    n_missing_signal: int
    point: dict[str, float]
    boot: dict[str, np.ndarray] | None


def _question_index(tidy: pd.DataFrame) -> pd.Index:
    """Sorted union of question ids: the resampling frame shared by all cells."""
    return pd.Index(sorted(tidy["question_id"].astype(str).unique()))


def _evaluate(
    tidy: pd.DataFrame,
    B: int,
    seed: int,
    target_risk: float,
    coverage: float,
    signals: Iterable[str] | None,
    risks: Iterable[str] | None,
    conditions: Iterable[str] | None = None,
) -> Iterator[_CellResult]:
    """Every (model, condition, signal, risk) result with paired bootstrap replicates.

    The resampling frame is always the whole table, so restricting
    ``conditions`` does not change the replicates of the cells kept.
    """
    keep = None if conditions is None else set(conditions)
    signals = list(SIGNALS) if signals is None else list(signals)
    risks = list(RISKS) if risks is None else list(risks)
    for s in signals:
        if s not in SIGNALS:
            raise KeyError(f"unknown signal {s!r}; choose from {sorted(SIGNALS)}")
    for r in risks:
        if r not in RISKS:
            raise KeyError(f"unknown risk kind {r!r}; choose from {sorted(RISKS)}")
    qindex = _question_index(tidy)
    counts = resample_counts(len(qindex), B, seed) if B > 0 else None
    for (model, condition), cell in tidy.groupby(list(CELL_KEYS), sort=True):
        if keep is not None and condition not in keep:
            continue
        qid = cell["question_id"].astype(str)
        if qid.duplicated().any():
            raise ValueError(f"duplicate question_id in cell ({model}, {condition})")
        pos = qindex.get_indexer(qid)
        n_bad = int((cell["status"] != "ok").sum()) if "status" in cell else 0
        cell_counts = counts[:, pos] if counts is not None else None
        for s in signals:
            col = SIGNALS[s].column
            raw = (
                pd.to_numeric(cell[col], errors="coerce")
                if col in cell
                else pd.Series(np.nan, index=cell.index)
            )
            n_missing = int(raw.isna().sum())
            available = n_missing < len(cell) and n_bad < len(cell)
            notes = []
            if n_bad == len(cell):
                notes.append("no record with status ok (cell skipped or failed)")
            elif n_bad:
                notes.append(f"{n_bad} records with status != ok kept as answered")
            if n_missing == len(cell):
                notes.append("signal not available (all null)")
            elif n_missing:
                notes.append(f"{n_missing} null confidences ranked lowest (deferred first)")
            note = "; ".join(notes)
            # A missing confidence cannot pass any gate: rank it below every observed value.
            conf = raw.fillna(-np.inf).to_numpy(dtype=float)
            errs = np.stack([gate_errors(cell, s, r) for r in risks])
            points: list[dict[str, float]] = [{} for _ in risks]
            boots: list[dict[str, np.ndarray] | None] = [None for _ in risks]
            if available:
                stats = curve_summaries(conf, errs, None, target_risk, coverage)
                points = [{k: float(v[0]) for k, v in st.items()} for st in stats]
                if cell_counts is not None:
                    boots = list(curve_summaries(conf, errs, cell_counts, target_risk, coverage))
            for r, point, boot in zip(risks, points, boots, strict=True):
                yield _CellResult(
                    model=str(model),
                    condition=str(condition),
                    signal=s,
                    risk=r,
                    available=available,
                    note=note,
                    n_questions=len(cell),
                    n_missing_signal=n_missing,
                    point=point,
                    boot=boot,
                )


_SUMMARY_WITH_CI = ("aurc", "e_aurc", "coverage_at_target")
_SUMMARY_POINT = ("base_risk", "optimal_aurc", "threshold_at_target")


def gate_table(
    tidy: pd.DataFrame,
    B: int = DEFAULT_B,
    seed: int = DEFAULT_SEED,
    target_risk: float = DEFAULT_TARGET_RISK,
    signals: Iterable[str] | None = None,
    risks: Iterable[str] | None = None,
) -> pd.DataFrame:
    """One row per (model, condition, signal, risk_kind) with AURC and coverage at target.

    Columns: model, condition, signal, answer, risk_kind, available, note,
    n_questions, n_missing_signal, base_risk, aurc, aurc_lo, aurc_hi,
    optimal_aurc, e_aurc, e_aurc_lo, e_aurc_hi, target_risk,
    coverage_at_target, coverage_at_target_lo, coverage_at_target_hi,
    threshold_at_target. CIs are percentile 95% over ``B`` question
    resamples (NaN when B = 0 or the signal is not available).
    """
    rows = []
    for res in _evaluate(tidy, B, seed, target_risk, DEFAULT_MATCHED_COVERAGE, signals, risks):
        row: dict[str, object] = {
            "model": res.model,
            "condition": res.condition,
            "signal": res.signal,
            "answer": SIGNALS[res.signal].answer,
            "risk_kind": res.risk,
            "available": res.available,
            "note": res.note,
            "n_questions": res.n_questions,
            "n_missing_signal": res.n_missing_signal,
            "target_risk": target_risk,
        }
        for key in _SUMMARY_POINT:
            row[key] = res.point.get(key, np.nan)
        for key in _SUMMARY_WITH_CI:
            row[key] = res.point.get(key, np.nan)
            lo, hi = percentile_ci(res.boot[key]) if res.boot is not None else (np.nan, np.nan)
            row[f"{key}_lo"], row[f"{key}_hi"] = lo, hi
        rows.append(row)
    columns = [
        "model", "condition", "signal", "answer", "risk_kind", "available", "note",
        "n_questions", "n_missing_signal", "base_risk", "aurc", "aurc_lo", "aurc_hi",
        "optimal_aurc", "e_aurc", "e_aurc_lo", "e_aurc_hi", "target_risk",
        "coverage_at_target", "coverage_at_target_lo", "coverage_at_target_hi",
        "threshold_at_target",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def gate_curves(
    tidy: pd.DataFrame,
    signals: Iterable[str] | None = None,
    risks: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Long table of risk-coverage points for plotting; only available signals appear.

    Cells without any ``status == "ok"`` record and all-null signals are left
    out, matching ``available`` in :func:`gate_table`.

    Columns: model, condition, signal, answer, risk_kind, threshold,
    coverage, risk, n_answered, n_errors. Null confidences sit at threshold
    -inf (the point at coverage 1).
    """
    frames = []
    signals = list(SIGNALS) if signals is None else list(signals)
    risks = list(RISKS) if risks is None else list(risks)
    for (model, condition), cell in tidy.groupby(list(CELL_KEYS), sort=True):
        if "status" in cell and (cell["status"] != "ok").all():
            continue  # skipped or failed cell: nothing to plot (see gate_table's note)
        for s in signals:
            col = SIGNALS[s].column
            if col not in cell:
                continue
            raw = pd.to_numeric(cell[col], errors="coerce")
            if raw.isna().all():
                continue
            conf = raw.fillna(-np.inf).to_numpy(dtype=float)
            for r in risks:
                curve = risk_coverage_curve(conf, gate_errors(cell, s, r))
                curve.insert(0, "risk_kind", r)
                curve.insert(0, "answer", SIGNALS[s].answer)
                curve.insert(0, "signal", s)
                curve.insert(0, "condition", condition)
                curve.insert(0, "model", model)
                frames.append(curve)
    columns = [
        "model", "condition", "signal", "answer", "risk_kind",
        "threshold", "coverage", "risk", "n_answered", "n_errors",
    ]  # fmt: skip
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def gate_signal_contrasts(
    tidy: pd.DataFrame,
    B: int = DEFAULT_B,
    seed: int = DEFAULT_SEED,
    risks: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Which signal gates best: paired bootstrap of AURC and E-AURC differences (a - b).

    One row per (model, condition, risk_kind, signal pair) where both signals
    are available. AURC compares whole systems (answer + gate: the SC and
    greedy answers differ); E-AURC isolates ranking quality. Negative = a
    better. Columns: model, condition, risk_kind, signal_a, signal_b,
    aurc_a, aurc_b, aurc_diff, aurc_diff_lo, aurc_diff_hi, aurc_diff_p (with
    aurc_diff_p_holm, aurc_diff_p_bh over ``SIGNAL_CONTRAST_FAMILY``), and the
    same for e_aurc_diff.
    """
    by_key: dict[tuple[str, str, str], dict[str, _CellResult]] = {}
    for res in _evaluate(tidy, B, seed, DEFAULT_TARGET_RISK, 1.0, None, risks):
        if res.available:
            by_key.setdefault((res.model, res.condition, res.risk), {})[res.signal] = res
    names = list(SIGNALS)
    rows = []
    for (model, condition, risk), found in by_key.items():
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                if a not in found or b not in found:
                    continue
                ra, rb = found[a], found[b]
                row: dict[str, object] = {
                    "model": model,
                    "condition": condition,
                    "risk_kind": risk,
                    "signal_a": a,
                    "signal_b": b,
                    "aurc_a": ra.point["aurc"],
                    "aurc_b": rb.point["aurc"],
                }
                for key in ("aurc", "e_aurc"):
                    row.update(_diff_summary(f"{key}_diff", ra, rb, key))
                rows.append(row)
    columns = [
        "model", "condition", "risk_kind", "signal_a", "signal_b", "aurc_a", "aurc_b",
        "aurc_diff", "aurc_diff_lo", "aurc_diff_hi", "aurc_diff_p",
        "e_aurc_diff", "e_aurc_diff_lo", "e_aurc_diff_hi", "e_aurc_diff_p",
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=columns)
    return _with_adjusted(table, ("aurc_diff", "e_aurc_diff"), SIGNAL_CONTRAST_FAMILY)


def _diff_summary(name: str, ra: _CellResult, rb: _CellResult, key: str) -> dict[str, float]:
    est = ra.point[key] - rb.point[key]
    if ra.boot is None or rb.boot is None:
        return {name: est, f"{name}_lo": np.nan, f"{name}_hi": np.nan, f"{name}_p": np.nan}
    diff = ra.boot[key] - rb.boot[key]
    lo, hi = percentile_ci(diff)
    return {name: est, f"{name}_lo": lo, f"{name}_hi": hi, f"{name}_p": bootstrap_p_value(diff)}


def gate_condition_contrasts(
    tidy: pd.DataFrame,
    pairs: Sequence[tuple[str, str]] = ((STANDARD_RAG, CLEAN_EVIDENCE),),
    coverage: float = DEFAULT_MATCHED_COVERAGE,
    B: int = DEFAULT_B,
    seed: int = DEFAULT_SEED,
    signals: Iterable[str] | None = None,
    risks: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Does gating close the gap between two conditions? Paired over questions.

    For each model, signal, risk kind and (condition_a, condition_b) pair:
    ``gap_ungated`` = base risk a - b (no gate, coverage 1);
    ``gap_at_coverage`` = risk a - b when each gate answers at least
    ``coverage`` of its questions (matched coverage, the primary measure);
    ``gap_change`` = gap_at_coverage - gap_ungated (negative: the gate
    narrows a positive gap); ``aurc_gap`` = AURC a - b (all coverages).
    Each with a paired percentile CI and bootstrap p (``_p``, with ``_p_holm`` and
    ``_p_bh`` over ``CONDITION_CONTRAST_FAMILY``).
    """
    if not 0.0 < coverage <= 1.0:
        raise ValueError("coverage must be in (0, 1]")
    results: dict[tuple[str, str, str, str], _CellResult] = {}
    wanted = {c for pair in pairs for c in pair}
    for res in _evaluate(tidy, B, seed, DEFAULT_TARGET_RISK, coverage, signals, risks, wanted):
        if res.available:
            results[(res.model, res.condition, res.signal, res.risk)] = res
    derived = {
        "gap_ungated": lambda d: d["base_risk"],
        "gap_at_coverage": lambda d: d["risk_at_coverage"],
        "gap_change": lambda d: d["risk_at_coverage"] - d["base_risk"],
        "aurc_gap": lambda d: d["aurc"],
    }
    rows = []
    keys = sorted({(m, s, r) for (m, _c, s, r) in results})
    for model, sig, risk in keys:
        for cond_a, cond_b in pairs:
            ra = results.get((model, cond_a, sig, risk))
            rb = results.get((model, cond_b, sig, risk))
            if ra is None or rb is None:
                continue
            row: dict[str, object] = {
                "model": model,
                "signal": sig,
                "risk_kind": risk,
                "condition_a": cond_a,
                "condition_b": cond_b,
                "coverage": coverage,
                "risk_a_ungated": ra.point["base_risk"],
                "risk_b_ungated": rb.point["base_risk"],
                "risk_a_at_coverage": ra.point["risk_at_coverage"],
                "risk_b_at_coverage": rb.point["risk_at_coverage"],
            }
            for name, fn in derived.items():
                row[name] = fn(ra.point) - fn(rb.point)
                if ra.boot is not None and rb.boot is not None:
                    diff = np.asarray(fn(ra.boot)) - np.asarray(fn(rb.boot))
                    row[f"{name}_lo"], row[f"{name}_hi"] = percentile_ci(diff)
                    row[f"{name}_p"] = bootstrap_p_value(diff)
                else:
                    row[f"{name}_lo"], row[f"{name}_hi"] = np.nan, np.nan
                    row[f"{name}_p"] = np.nan
            rows.append(row)
    columns = [
        "model", "signal", "risk_kind", "condition_a", "condition_b", "coverage",
        "risk_a_ungated", "risk_b_ungated", "risk_a_at_coverage", "risk_b_at_coverage",
    ] + [f"{n}{s}" for n in derived for s in ("", "_lo", "_hi", "_p")]  # fmt: skip
    table = pd.DataFrame(rows, columns=columns)
    return _with_adjusted(table, tuple(derived), CONDITION_CONTRAST_FAMILY)
