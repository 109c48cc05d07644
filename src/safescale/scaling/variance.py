"""How much of each metric's variance is condition, family or size."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

from safescale.scaling.common import (
    ALL_METRICS,
    VARIANCE_COLUMNS,
    captured,
    join_notes,
    log10_params,
    nan_row,
)


def variance_decomposition(
    metrics: pd.DataFrame,
    metric_cols: Sequence[str] | None = None,
    include_size: bool = False,
) -> pd.DataFrame:
    """Share of each metric's variance due to condition vs family (type II SS / total SS).

    ``metric ~ C(condition) + C(family) [+ log10(params)]``; shares use type II
    sums of squares over the total SS. In a balanced panel (every model in every
    condition) the factors are orthogonal and condition + family + residual = 1;
    otherwise the overlap goes to ``share_shared`` so the row still sums to 1. A
    factor with a single level explains nothing by construction (share 0, noted).
    """
    cols = [m for m in (metric_cols or ALL_METRICS) if m in metrics.columns]
    rows: list[dict[str, Any]] = []
    for metric in cols:
        d = metrics[["condition", "family", "params_b", metric]].dropna()
        d = d.rename(columns={metric: "y", "condition": "cond", "family": "fam"})
        d["lp"] = log10_params(d["params_b"])
        ss_total = float(((d["y"] - d["y"].mean()) ** 2).sum())
        n_cond, n_fam = d["cond"].nunique(), d["fam"].nunique()
        base = {
            "metric": metric,
            "n_obs": len(d),
            "n_conditions": n_cond,
            "n_families": n_fam,
            "ss_total": ss_total,
        }
        notes = []
        if len(d) < 3 or not ss_total > 0:
            why = "fewer than 3 rows" if len(d) < 3 else "zero total variance"
            rows.append(nan_row(VARIANCE_COLUMNS, **base, note=f"{why}: shares not defined"))
            continue
        terms = []
        if n_cond > 1:
            terms.append("C(cond)")
        else:
            notes.append("condition has one level: share 0 by construction")
        if n_fam > 1:
            terms.append("C(fam)")
        else:
            notes.append("family has one level: share 0 by construction")
        if include_size:
            if d["lp"].nunique() > 1:
                terms.append("lp")
            else:
                notes.append("one model size: size share 0 by construction")
        shares = {"C(cond)": 0.0, "C(fam)": 0.0, "lp": 0.0}
        ss_resid = ss_total
        if terms:
            # Type-II sums of squares as SSR(without term) - SSR(full): no F test, so a
            # saturated panel (no residual degrees of freedom) still decomposes.
            with captured() as msgs:
                fit = smf.ols("y ~ " + " + ".join(terms), data=d).fit()
                for t in terms:
                    rest = [x for x in terms if x != t]
                    reduced = smf.ols("y ~ " + (" + ".join(rest) if rest else "1"), data=d).fit()
                    shares[t] = max(0.0, float(reduced.ssr - fit.ssr)) / ss_total
            if msgs:
                notes.append("; ".join(msgs))
            if fit.df_resid <= 0:
                notes.append("saturated: no residual degrees of freedom")
            ss_resid = float(fit.ssr)
        share_resid = ss_resid / ss_total
        named = shares["C(cond)"] + shares["C(fam)"] + shares["lp"] + share_resid
        rows.append(
            {
                **base,
                "share_condition": shares["C(cond)"],
                "share_family": shares["C(fam)"],
                "share_size": shares["lp"] if include_size else np.nan,
                "share_residual": share_resid,
                "share_shared": 1.0 - named,
                "note": join_notes(*notes),
            }
        )
    return pd.DataFrame(rows, columns=VARIANCE_COLUMNS)
