"""How much of each metric's variance is condition, family or size."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from safescale.analysis.bootstrap import resample_indices
from safescale.scaling.common import (
    ALL_METRICS,
    VARIANCE_COLUMNS,
    join_notes,
    log10_params,
    nan_row,
    percentile_interval,
)

TERMS: tuple[str, ...] = ("condition", "family", "size")


def _dummies(values: np.ndarray) -> np.ndarray:
    codes, levels = pd.factorize(values)
    return np.eye(len(levels))[codes][:, 1:]


def _ssr(y: np.ndarray, blocks: list[np.ndarray]) -> float:
    X = np.column_stack([np.ones(len(y)), *blocks])
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    return float(resid @ resid)


def _shares(d: dict[str, np.ndarray], terms: Sequence[str]) -> tuple[dict[str, float], float, int]:
    """Type-II share of each term (SSR without it - SSR full) / total SS, and the
    residual share and df. No F test, so a saturated panel still decomposes."""
    y = d["y"]
    ss_total = float(((y - y.mean()) ** 2).sum())
    blocks = {
        "condition": _dummies(d["condition"]),
        "family": _dummies(d["family"]),
        "size": d["lp"][:, None],
    }
    full = _ssr(y, [blocks[t] for t in terms])
    shares = {
        t: max(0.0, _ssr(y, [blocks[u] for u in terms if u != t]) - full) / ss_total for t in terms
    }
    n_params = 1 + sum(blocks[t].shape[1] for t in terms)
    return shares, full / ss_total, len(y) - n_params


def variance_decomposition(
    metrics: pd.DataFrame,
    metric_cols: Sequence[str] | None = None,
    include_size: bool = True,
    B: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Share of each metric's variance due to condition, family and size (type II SS).

    ``metric ~ C(condition) + C(family) [+ log10(params)]``; each share is the SS a
    term adds beyond the others over the total SS. In a balanced panel condition is
    orthogonal to the model terms; the overlap goes to ``share_shared`` so the row
    sums to 1. Family is not identifiable (NaN, noted) when no family has two
    sizes: family then equals model. A factor with one level has share 0 (noted).
    Percentile CIs come from a bootstrap over models (each model with all its
    conditions; ``resample_indices``), B replicates.
    """
    cols = [m for m in (metric_cols or ALL_METRICS) if m in metrics.columns]
    rows: list[dict[str, Any]] = []
    for metric in cols:
        d = metrics[["model", "condition", "family", "params_b", metric]].dropna()
        d = d.rename(columns={metric: "y"})
        d["lp"] = log10_params(d["params_b"])
        ss_total = float(((d["y"] - d["y"].mean()) ** 2).sum())
        n_cond, n_fam = d["condition"].nunique(), d["family"].nunique()
        base = {
            "metric": metric,
            "n_obs": len(d),
            "n_conditions": n_cond,
            "n_families": n_fam,
            "ss_total": ss_total,
            "B": B,
        }
        if len(d) < 3 or not ss_total > 0:
            why = "fewer than 3 rows" if len(d) < 3 else "zero total variance"
            rows.append(nan_row(VARIANCE_COLUMNS, **base, note=f"{why}: shares not defined"))
            continue
        notes, terms, zero = [], [], []
        if n_cond > 1:
            terms.append("condition")
        else:
            zero.append("condition")
            notes.append("condition has one level: share 0 by construction")
        models = d.drop_duplicates("model")
        family_sizes = models.groupby("family")["params_b"].nunique()
        family_identified = n_fam > 1 and bool((family_sizes >= 2).any())
        if n_fam <= 1:
            zero.append("family")
            notes.append("family has one level: share 0 by construction")
        elif family_identified:
            terms.append("family")
        else:
            notes.append("family not identifiable: no family has two sizes (family = model)")
        if include_size:
            if d["lp"].nunique() > 1:
                terms.append("size")
            else:
                zero.append("size")
                notes.append("one model size: size share 0 by construction")
        arrays = {k: d[k].to_numpy() for k in ("y", "condition", "family", "lp", "model")}
        arrays["y"], arrays["lp"] = arrays["y"].astype(float), arrays["lp"].astype(float)
        shares, share_resid, df_resid = _shares(arrays, terms)
        if df_resid <= 0:
            notes.append("saturated: no residual degrees of freedom")
        named = sum(shares.values()) + share_resid
        point = {f"share_{t}": shares.get(t, 0.0 if t in zero else np.nan) for t in TERMS}
        if not include_size:
            point["share_size"] = np.nan
        row = {**base, **point, "share_residual": share_resid, "share_shared": 1.0 - named}
        row.update(_model_bootstrap(arrays, terms, B, seed, alpha))
        rows.append({**row, "note": join_notes(*notes, "CIs: bootstrap over models")})
    return pd.DataFrame(rows, columns=VARIANCE_COLUMNS)


def _model_bootstrap(
    arrays: dict[str, np.ndarray], terms: list[str], B: int, seed: int, alpha: float
) -> dict[str, float]:
    """Percentile CI of each fitted share, resampling whole models."""
    if not terms or B < 1:
        return {}
    codes, model_ids = pd.factorize(arrays["model"])
    rows_of = [np.flatnonzero(codes == k) for k in range(len(model_ids))]
    draws: dict[str, list[float]] = {t: [] for t in terms}
    for idx in resample_indices(len(model_ids), B, seed):
        sel = np.concatenate([rows_of[i] for i in idx])
        rep = {k: v[sel] for k, v in arrays.items()}
        if np.ptp(rep["y"]) == 0:
            continue
        shares, _, _ = _shares(rep, terms)
        for t in terms:
            draws[t].append(shares[t])
    out = {}
    for t in terms:
        lo, hi, _ = percentile_interval(np.asarray(draws[t]), alpha)
        out[f"share_{t}_low"], out[f"share_{t}_high"] = lo, hi
    return out
