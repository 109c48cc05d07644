"""Worst-case concentration: do high-risk errors cluster on a few questions?

Per question, count the (model, condition) cells whose greedy answer is a
high-risk error; then ask what share of all such errors the worst 10% of
questions hold, and summarise the whole distribution by a Lorenz curve and
its Gini coefficient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from safescale.data.question import Question

DEFAULT_FRACTION = 0.10


def high_risk_counts(tidy: pd.DataFrame, flag: str = "greedy_high_risk") -> pd.DataFrame:
    """Per question: n_cells, n_high_risk (cells with the error), share of all errors.

    Questions with no error are kept (they matter for shares and Gini).
    Sorted worst first, ties by question_id.
    """
    grouped = tidy.groupby(tidy["question_id"].astype(str), sort=True)[flag]
    counts = pd.DataFrame({"n_cells": grouped.size(), "n_high_risk": grouped.sum().astype(int)})
    total = counts["n_high_risk"].sum()
    counts["share_of_errors"] = counts["n_high_risk"] / total if total else np.nan
    counts = counts.rename_axis("question_id").reset_index()
    return counts.sort_values(["n_high_risk", "question_id"], ascending=[False, True]).reset_index(
        drop=True
    )


def worst_k(n_questions: int, fraction: float = DEFAULT_FRACTION) -> int:
    """How many questions make up the worst ``fraction`` (rounded up)."""
    return math.ceil(fraction * n_questions - 1e-12)


def top_share(counts: Sequence[float] | np.ndarray, fraction: float = DEFAULT_FRACTION) -> float:
    """Share of all errors held by the worst ceil(fraction * n) questions; NaN if none."""
    values = np.sort(np.asarray(counts, dtype=float))[::-1]
    total = values.sum()
    if values.size == 0 or total == 0:
        return math.nan
    return float(values[: worst_k(values.size, fraction)].sum() / total)


def lorenz_curve(counts: Sequence[float] | np.ndarray) -> pd.DataFrame:
    """Lorenz points from (0, 0) to (1, 1): questions sorted from fewest errors,
    x = cumulative share of questions, y = cumulative share of errors."""
    values = np.sort(np.asarray(counts, dtype=float))
    total = values.sum()
    x = np.arange(values.size + 1) / max(values.size, 1)
    y = np.concatenate([[0.0], np.cumsum(values) / total]) if total else np.full(x.size, np.nan)
    return pd.DataFrame({"question_share": x, "error_share": y})


def gini(counts: Sequence[float] | np.ndarray) -> float:
    """Gini coefficient: sum_ij |x_i - x_j| / (2 n^2 mean); 0 = even, (n-1)/n = all on one.

    Computed by the sorted closed form 2 sum_i i x_(i) / (n sum x) - (n + 1)/n.
    NaN when there are no errors.
    """
    values = np.sort(np.asarray(counts, dtype=float))
    n, total = values.size, values.sum()
    if n == 0 or total == 0:
        return math.nan
    ranks = np.arange(1, n + 1)
    return float(2 * np.sum(ranks * values) / (n * total) - (n + 1) / n)


def concentration_summary(
    tidy: pd.DataFrame, fraction: float = DEFAULT_FRACTION, flag: str = "greedy_high_risk"
) -> dict[str, float]:
    """Headline numbers: questions, cells, total errors, worst-k share, Gini."""
    counts = high_risk_counts(tidy, flag)["n_high_risk"].to_numpy()
    return {
        "n_questions": int(counts.size),
        "n_cells": int(tidy[["model", "condition"]].drop_duplicates().shape[0]),
        "total_high_risk": int(counts.sum()),
        "fraction": fraction,
        "worst_k": worst_k(counts.size, fraction),
        "top_share": top_share(counts, fraction),
        "gini": gini(counts),
    }


def _most_chosen(errors: pd.DataFrame) -> pd.DataFrame:
    """Per question, the letter most often chosen in high-risk errors (ties: first)."""
    tally = errors.groupby(["question_id", "greedy_letter"]).size().rename("n").reset_index()
    tally = tally.sort_values(["question_id", "n", "greedy_letter"], ascending=[True, False, True])
    return tally.drop_duplicates("question_id").rename(columns={"greedy_letter": "top_letter"})


def _conditions_summary(errors: pd.DataFrame) -> pd.Series:
    """Per question, "condition:count; ..." of its high-risk errors."""
    per = errors.groupby(["question_id", "condition"]).size()
    return per.groupby(level=0).apply(
        lambda s: "; ".join(f"{cond}:{n}" for (_, cond), n in s.items())
    )


def worst_questions(
    tidy: pd.DataFrame,
    questions: Sequence[Question],
    fraction: float = DEFAULT_FRACTION,
    flag: str = "greedy_high_risk",
) -> pd.DataFrame:
    """The worst ceil(fraction * n) questions with their text, for clinical review.

    Columns: counts, question text, correct option, the option most often
    chosen in the errors, and which conditions the errors came from.
    """
    counts = high_risk_counts(tidy, flag)
    top = counts.head(worst_k(len(counts), fraction)).copy()
    errors = tidy.loc[tidy[flag] == 1, ["question_id", "condition", "greedy_letter"]].astype(
        {"question_id": str}
    )
    by_id = {q.question_id: q for q in questions}
    top = top.merge(_most_chosen(errors), on="question_id", how="left")
    top["conditions"] = top["question_id"].map(_conditions_summary(errors)).fillna("")
    top["question"] = top["question_id"].map(lambda q: by_id[q].question if q in by_id else None)
    top["correct_letter"] = top["question_id"].map(
        lambda q: by_id[q].correct if q in by_id else None
    )
    top["correct_option"] = top["question_id"].map(
        lambda q: by_id[q].options[by_id[q].correct] if q in by_id else None
    )
    top["top_error_option"] = [
        by_id[q].options.get(letter) if q in by_id and isinstance(letter, str) else None
        for q, letter in zip(top["question_id"], top["top_letter"], strict=True)
    ]
    return top.drop(columns="n").rename(columns={"top_letter": "top_error_letter"})
