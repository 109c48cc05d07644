"""Majority-vote ensembles of models' greedy letters, per condition.

Every k-member combination is evaluated at once: letters are coded 0..4
(A..E) and 5 (NULL), votes are counted with array operations over
(combination x member x question). The vote rule is the study's: mode with
NULL as a ballot, ties alphabetical-first, a tie containing NULL abstains
(the same rule as ``labeling.majority_vote``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from safescale.analysis.labeling import majority_vote
from safescale.conditions import LABEL_KINDS, LETTERS

NULL_CODE = len(LETTERS)
_CODE = {letter: i for i, letter in enumerate(LETTERS)}
RATE_FLAGS: dict[str, str] = {
    "high_risk_rate": "high_risk",
    "unsafe_rate": "unsafe",
    "contradiction_rate": "contradicts",
}
MEMBER_METRICS: tuple[str, ...] = ("accuracy", *RATE_FLAGS)


def ensemble_vote(letters: Iterable[str | None]) -> str | None:
    """The ensemble's letter, None for an abstention (same rule as SC majority)."""
    return majority_vote(letters)


def _code(letter: object) -> int:
    return _CODE.get(letter, NULL_CODE) if isinstance(letter, str) else NULL_CODE


def vote_codes(votes: np.ndarray) -> np.ndarray:
    """Vectorised ``ensemble_vote`` over axis 1 of coded votes (K x k x n) -> (K x n)."""
    counts = np.stack([(votes == code).sum(axis=1) for code in range(NULL_CODE + 1)], axis=1)
    is_top = counts == counts.max(axis=1, keepdims=True)
    first_letter = np.argmax(is_top[:, :NULL_CODE, :], axis=1)
    return np.where(is_top[:, NULL_CODE, :], NULL_CODE, first_letter)


def _condition_arrays(
    rows: pd.DataFrame, models: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Coded greedy letters (models x questions), correct codes, and per
    (question, letter) safety flags (wrong AND labelled), read off the rows
    where some member chose that letter; column NULL_CODE is always 0."""
    qids = np.sort(rows["question_id"].astype(str).unique())
    q_pos = {q: i for i, q in enumerate(qids)}
    m_pos = {m: i for i, m in enumerate(models)}
    letters = np.full((len(models), len(qids)), NULL_CODE)
    correct = np.full(len(qids), NULL_CODE)
    flags = {kind: np.zeros((len(qids), NULL_CODE + 1)) for kind in LABEL_KINDS}
    for row in rows.itertuples(index=False):
        q, code = q_pos[str(row.question_id)], _code(row.greedy_letter)
        letters[m_pos[str(row.model)], q] = code
        correct[q] = _code(row.correct_letter)
        if code != NULL_CODE:
            for kind in LABEL_KINDS:
                flags[kind][q, code] = float(getattr(row, f"greedy_{kind}"))
    return letters, correct, flags


def _rates(
    chosen: np.ndarray, correct: np.ndarray, flags: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Accuracy and safety rates of coded answers (... x n), averaged over questions."""
    q = np.arange(chosen.shape[-1])
    out = {"accuracy": (chosen == correct).mean(axis=-1)}
    for name, kind in RATE_FLAGS.items():
        out[name] = flags[kind][q, chosen].mean(axis=-1)
    return out


def _best_members(
    combos: np.ndarray, member: dict[str, np.ndarray], models: Sequence[str]
) -> np.ndarray:
    """Best member of each combination: highest accuracy, then lowest high-risk
    rate, then name."""
    order = np.lexsort((np.asarray(models), member["high_risk_rate"], -member["accuracy"]))
    rank = np.empty(len(models), dtype=int)
    rank[order] = np.arange(len(models))
    return combos[np.arange(len(combos)), np.argmin(rank[combos], axis=1)]


def _condition_table(
    rows: pd.DataFrame, models: Sequence[str], size: int, condition: str
) -> pd.DataFrame:
    letters, correct, flags = _condition_arrays(rows, models)
    combos = np.array(list(itertools.combinations(range(len(models)), size)), dtype=int)
    votes = letters[combos]  # (K, size, n)
    chosen = vote_codes(votes)
    ensemble = _rates(chosen, correct, flags)
    member = _rates(letters, correct, flags)
    best = _best_members(combos, member, models)
    first = votes[:, 0, :]
    synchronized = (
        (votes == first[:, None, :]).all(axis=1) & (first != NULL_CODE) & (first != correct)
    )
    names = np.asarray(models)
    table = pd.DataFrame(
        {
            "condition": condition,
            "members": ["+".join(names[c]) for c in combos],
            "n_questions": letters.shape[1],
            **ensemble,
            "abstention_rate": (chosen == NULL_CODE).mean(axis=1),
            "synchronized_failure_rate": synchronized.mean(axis=1),
            "best_member": names[best],
        }
    )
    for name in MEMBER_METRICS:
        table[f"best_member_{name}"] = member[name][best]
        table[f"delta_{name}"] = table[name] - table[f"best_member_{name}"]
    return table


def ensemble_table(
    tidy: pd.DataFrame, models: Sequence[str] | None = None, size: int = 3
) -> pd.DataFrame:
    """Every ``size``-member combination of ``models`` (default: all), per condition.

    Per combination: ensemble accuracy and high-risk/unsafe/contradiction rates,
    abstention rate, synchronized failure (all members give the same wrong
    letter), the best member (by accuracy) and ensemble - best-member deltas.
    Denominator: the questions of the condition that every chosen model answered
    (a question skipped for any of them is left out, not voted NULL); pass the tidy
    table through ``labeling.answered`` first so skipped rows count as absent.
    """
    frames = []
    for condition, rows in tidy.groupby("condition", sort=True):
        present = sorted(rows["model"].astype(str).unique())
        chosen_models = present if models is None else [m for m in models if m in present]
        if len(chosen_models) < size:
            continue
        rows = rows[rows["model"].astype(str).isin(chosen_models)]
        per_question = rows.groupby(rows["question_id"].astype(str))["model"].nunique()
        common = per_question.index[per_question == len(chosen_models)]
        rows = rows[rows["question_id"].astype(str).isin(common)]
        frames.append(_condition_table(rows, sorted(chosen_models), size, str(condition)))
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)
