"""Adjusted p-values for a family of tests (Holm: family-wise error; Benjamini-Hochberg:
false discovery rate). Every table that prints many tests adds both columns, and the
summary words its claims on the adjusted ones."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

METHODS: dict[str, str] = {"p_holm": "holm", "p_bh": "fdr_bh"}


def adjust_pvalues(p: Sequence[float] | np.ndarray, method: str) -> np.ndarray:
    """Adjusted p-values; NaN (a test not run) stays NaN and does not count in the family."""
    values = np.asarray(p, dtype=float)
    out = np.full(values.shape, np.nan)
    ok = ~np.isnan(values)
    if ok.any():
        out[ok] = multipletests(values[ok], method=method)[1]
    return out


def add_adjusted(
    table: pd.DataFrame, p_column: str = "p", family: Sequence[str] | None = None
) -> pd.DataFrame:
    """`table` with `p_holm` and `p_bh` beside `p_column`, adjusted within each family
    (the groups of `family` columns; the whole table when None)."""
    out = table.copy()
    for column in METHODS:
        out[column] = np.nan
    if out.empty or p_column not in out:
        return out
    by = out.groupby(list(family), dropna=False) if family else None
    groups = [group.index for _, group in by] if by is not None else [out.index]
    for index in groups:
        for column, method in METHODS.items():
            out.loc[index, column] = adjust_pvalues(out.loc[index, p_column], method)
    return out
