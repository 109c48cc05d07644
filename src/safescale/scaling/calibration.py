"""Calibration of every fitting path on simulated panels: CI coverage of known slopes
and the size of each test under a simulated null.

``python -m safescale.scaling.calibration`` (``make calibrate``) prints one table and
writes docs/figures/scaling_calibration.png; docs/SCALING.md quotes both. The
tests call the same functions with fewer panels.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from safescale.conditions import (
    AGENTIC_RAG,
    CLEAN_EVIDENCE,
    CLOSED_BOOK,
    CONFLICT_EVIDENCE,
    MAX_CONTEXT,
    STANDARD_RAG,
)
from safescale.scaling.common import ACCURACY, NOT_ESTIMABLE, model_metrics
from safescale.scaling.differences import bootstrap_slope_differences, slope_difference_test
from safescale.scaling.hypotheses import joint_slope_difference_test, scale_condition_interaction
from safescale.scaling.question_models import fit_question_bootstrap
from safescale.scaling.sensitivity import fit_sensitivity_slopes
from safescale.scaling.simulation import simulate_panel
from safescale.scaling.slopes import fit_scaling_slopes

ALPHA = 0.05
TWO_METRICS: tuple[str, ...] = (ACCURACY, "high_risk_rate")
CONDITIONS: tuple[str, ...] = (CLOSED_BOOK, CLEAN_EVIDENCE, STANDARD_RAG)
SIX_CONDITIONS: tuple[str, ...] = (
    *CONDITIONS,
    CONFLICT_EVIDENCE,
    AGENTIC_RAG,
    MAX_CONTEXT,
)

#: equal slopes in every condition, and each safety slope equal to the error-rate
#: slope (accuracy +0.04/decade, high-risk -0.04/decade): the null of both claims.
NULL_SLOPES: dict[str, dict[str, float]] = {
    ACCURACY: dict.fromkeys(SIX_CONDITIONS, 0.04),
    "high_risk_rate": dict.fromkeys(SIX_CONDITIONS, -0.04),
}
NULL_LEVELS: dict[str, dict[str, float]] = {
    ACCURACY: {
        CLOSED_BOOK: 0.70,
        CLEAN_EVIDENCE: 0.85,
        STANDARD_RAG: 0.75,
        CONFLICT_EVIDENCE: 0.50,
        AGENTIC_RAG: 0.78,
        MAX_CONTEXT: 0.72,
    },
    "high_risk_rate": {
        CLOSED_BOOK: 0.25,
        CLEAN_EVIDENCE: 0.12,
        STANDARD_RAG: 0.20,
        CONFLICT_EVIDENCE: 0.40,
        AGENTIC_RAG: 0.18,
        MAX_CONTEXT: 0.22,
    },
}
ZERO_SLOPES: dict[str, dict[str, float]] = {m: dict.fromkeys(CONDITIONS, 0.0) for m in TWO_METRICS}

#: panel shapes: the study's size, a mid-sized panel, one model per family, and
#: families with typical sizes (family and size confounded).
PANELS: dict[str, dict[str, Any]] = {
    "study (34 models, 7 families)": {"n_models": 34, "n_families": 7, "n_questions": 100},
    "mid (12 models, 4 families)": {"n_models": 12, "n_families": 4, "n_questions": 80},
    "one per family (8 models)": {"n_models": 8, "n_families": 8, "n_questions": 80},
    "confounded (34 models, sizes by family)": {
        "n_models": 34,
        "n_families": 7,
        "n_questions": 100,
        "family_size_sd": 0.25,
    },
}
#: the claim tests also run where the interaction test has its real dimension: the
#: study's six conditions (five slope differences tested jointly).
CLAIM_PANELS: dict[str, dict[str, Any]] = {
    **PANELS,
    "study, six conditions": {
        "n_models": 34,
        "n_families": 7,
        "n_questions": 100,
        "conditions": SIX_CONDITIONS,
    },
}
#: the calibration paths of the claim tests (``--claims-only`` reruns just these).
CLAIM_PATHS: tuple[str, ...] = (
    "scale_condition_interaction",
    "joint_slope_difference_test",
)


@dataclass
class Check:
    """One calibration line: a fitting path, a panel, what is measured."""

    path: str
    panel: str
    quantity: str  # "coverage" (of the true value by the 95% CI) or "size" (rejections at 5%)
    hits: int
    n: int
    extra: str = ""

    @property
    def rate(self) -> float:
        return self.hits / self.n if self.n else np.nan

    def row(self) -> dict[str, Any]:
        lo, hi = wilson_interval(self.hits, self.n)
        return {
            "path": self.path,
            "panel": self.panel,
            "quantity": self.quantity,
            "rate": self.rate,
            "low": lo,
            "high": hi,
            "n": self.n,
            "note": self.extra,
        }


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a binomial rate (the Monte Carlo error of a check)."""
    if n == 0:
        return np.nan, np.nan
    p = hits / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return centre - half, centre + half


def _covered(table: pd.DataFrame, truth: pd.Series) -> pd.Series:
    ok = table["method"] != NOT_ESTIMABLE
    inside = (table["ci_low"] <= truth) & (truth <= table["ci_high"])
    return inside[ok]


def slope_coverage(
    reps: int, seed: int, panel: Mapping[str, Any], by_condition: bool = True
) -> tuple[Check, pd.DataFrame]:
    """Coverage of the true slopes by fit_scaling_slopes' CIs, and SE vs SD per method."""
    fits = []
    for r in range(reps):
        tidy, truth = simulate_panel(seed=seed + r, metrics=TWO_METRICS, **panel)
        fit = fit_scaling_slopes(model_metrics(tidy), TWO_METRICS, by_condition=by_condition)
        true = truth.slopes[["metric", "condition", "slope"]]
        fits.append(fit.merge(true.rename(columns={"slope": "true"}), on=["metric", "condition"]))
    per_fit = pd.concat(fits, ignore_index=True)
    covered = _covered(per_fit, per_fit["true"])
    est = per_fit[per_fit["method"] != NOT_ESTIMABLE]
    ratio = (
        est.assign(err=est["slope"] - est["true"])
        .groupby(["metric", "condition"])
        .agg(se=("se", "mean"), sd=("err", "std"))
    )
    methods = ", ".join(f"{k} {v}" for k, v in est["method"].value_counts().items())
    extra = f"mean SE / SD {np.median(ratio['se'] / ratio['sd']):.2f}; {methods}"
    path = "fit_scaling_slopes" + (" (per condition)" if by_condition else " (pooled)")
    return Check(path, "", "coverage", int(covered.sum()), int(covered.size), extra), per_fit


def _null_panels(reps: int, seed: int, panel: Mapping[str, Any], slopes: Mapping[str, Any]):
    for r in range(reps):
        tidy, _ = simulate_panel(
            seed=seed + r, metrics=TWO_METRICS, slopes=slopes, levels=NULL_LEVELS, **panel
        )
        yield tidy, model_metrics(tidy)


def _rejections(p: pd.Series) -> tuple[int, int]:
    p = p.dropna()
    return int((p < ALPHA).sum()), int(p.size)


def null_rejections(
    reps: int,
    seed: int,
    panel: Mapping[str, Any],
    boot_B: int,
    inter_B: int = 399,
    claims_only: bool = False,
) -> list[Check]:
    """Rejection rates at 5% of every test under its simulated null (``claims_only``:
    the interaction and joint tests only; ``inter_B``: the interaction's bootstrap)."""
    counts: dict[str, list[int]] = {}

    def add(path: str, p: pd.Series) -> None:
        hits, n = _rejections(p)
        counts.setdefault(path, [0, 0])
        counts[path][0] += hits
        counts[path][1] += n

    for r, (tidy, met) in enumerate(_null_panels(reps, seed, panel, NULL_SLOPES)):
        inter = scale_condition_interaction(met, TWO_METRICS, B=inter_B, seed=seed + r)
        joint = inter["term"] == "all conditions"
        name = "scale_condition_interaction"
        add(f"{name} (wild cluster bootstrap)", inter.loc[joint, "p"])
        add(f"{name} (plain F, unclustered)", inter.loc[joint, "p_unclustered"])
        add(f"{name} contrasts (CR2, BM df)", inter.loc[~joint, "p"])
        add("joint_slope_difference_test (Hotelling)", joint_slope_difference_test(met)["p"])
        if claims_only:
            continue
        diff = slope_difference_test(met, ["high_risk_rate"])
        for method, part in diff.groupby("method"):
            if method != NOT_ESTIMABLE:
                add(f"slope_difference_test [{method}]", part["p"])
        if boot_B:
            boot = bootstrap_slope_differences(tidy, ["greedy_high_risk"], B=boot_B, seed=1)
            add("bootstrap_slope_differences (questions only)", boot["p"])
    if not claims_only:
        for _, met in _null_panels(reps, seed + 10_000, panel, ZERO_SLOPES):
            sens = fit_sensitivity_slopes(met, TWO_METRICS, covariates=())
            add("fit_sensitivity_slopes (logit, slope 0)", sens["p"])
    never = "not estimable in any panel"
    return [Check(path, "", "size", h, n, "" if n else never) for path, (h, n) in counts.items()]


def question_coverage(reps: int, seed: int, panel: Mapping[str, Any], B: int) -> Check:
    """Coverage of the true per-condition slopes by the two-way bootstrap (identity link,
    where the question-level slope equals the model-level one by construction)."""
    hits = n = 0
    for r in range(reps):
        tidy, truth = simulate_panel(seed=seed + r, metrics=(ACCURACY,), **panel)
        fit = fit_question_bootstrap(tidy, ["greedy_correct"], link="identity", B=B, seed=r)
        true = truth.slopes.set_index("condition")["slope"]
        targets = {"log10_params": true[CLOSED_BOOK]}
        for c in CONDITIONS[1:]:
            targets[f"log10_params:condition[T.{c}]"] = true[c] - true[CLOSED_BOOK]
        rows = fit[fit["term"].isin(list(targets))]
        covered = _covered(rows, rows["term"].map(targets))
        hits, n = hits + int(covered.sum()), n + int(covered.size)
    return Check(f"fit_question_bootstrap (identity, B={B})", "", "coverage", hits, n)


def run(reps: int, seed: int = 2026, boot_B: int = 200) -> pd.DataFrame:
    """Every check on every panel shape; reps panels each."""
    rows = []
    for name, panel in PANELS.items():
        for by_condition in (True, False):
            check, _ = slope_coverage(reps, seed, panel, by_condition)
            rows.append({**check.row(), "panel": name})
        for check in null_rejections(reps, seed + 50_000, panel, boot_B if "study" in name else 0):
            rows.append({**check.row(), "panel": name})
        small = {**panel, "n_questions": 60}
        rows.append({**question_coverage(reps, seed, small, boot_B).row(), "panel": name})
    return pd.concat([pd.DataFrame(rows), run_claims(reps, seed, only_extra=True)])


def run_claims(reps: int, seed: int = 2026, only_extra: bool = False) -> pd.DataFrame:
    """The claim tests' size on every claim panel (``only_extra``: the panels that
    ``run`` does not cover)."""
    rows = []
    for name, panel in CLAIM_PANELS.items():
        if only_extra and name in PANELS:
            continue
        for check in null_rejections(reps, seed + 50_000, panel, 0, claims_only=True):
            rows.append({**check.row(), "panel": name})
    return pd.DataFrame(rows)


def merge_claims(table: pd.DataFrame, claims: pd.DataFrame) -> pd.DataFrame:
    """Replace the claim-test rows of a calibration table by a fresh run of them."""
    is_claim = table["path"].str.startswith(CLAIM_PATHS)
    order = list(dict.fromkeys([*table["panel"], *claims["panel"]]))
    out = pd.concat([table[~is_claim], claims], ignore_index=True)
    rank = out["panel"].map({p: i for i, p in enumerate(order)})
    return out.assign(_rank=rank).sort_values("_rank", kind="stable").drop(columns="_rank")


def plot(table: pd.DataFrame, path: Path) -> None:
    """Coverage and size per path and panel, with their Monte Carlo intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = [table[table["quantity"] == q].reset_index(drop=True) for q in ("coverage", "size")]
    fig, axes = plt.subplots(
        2,
        1,
        figsize=(8.6, 0.2 * len(table) + 1.6),
        gridspec_kw={"height_ratios": [max(len(p), 1) for p in parts]},
    )
    for ax, part, target in zip(axes, parts, (0.95, 0.05), strict=True):
        quantity = "coverage of the true value" if target > 0.5 else "rejections at 5% (null true)"
        y = np.arange(len(part))
        ax.errorbar(
            part["rate"],
            y,
            xerr=[part["rate"] - part["low"], part["high"] - part["rate"]],
            fmt="o",
            ms=3,
            lw=0.8,
        )
        ax.axvline(target, color="0.4", ls="--", lw=0.8)
        ax.set_yticks(y, [f"{r.path} | {r.panel}" for r in part.itertuples()], fontsize=6)
        ax.set_ylim(len(part) - 0.5, -0.5)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel(f"{quantity} (target {target:g}; bars: 95% Monte Carlo interval)", fontsize=7)
    fig.subplots_adjust(left=0.56, right=0.98, top=0.98, bottom=0.05, hspace=0.25)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=50, help="simulated panels per check")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--boot-B", type=int, default=200)
    parser.add_argument("--figure", default="docs/figures/scaling_calibration.png")
    parser.add_argument("--table", default="docs/figures/scaling_calibration.csv")
    parser.add_argument("--replot", action="store_true", help="only redraw from --table")
    parser.add_argument(
        "--claims-only",
        action="store_true",
        help="rerun only the interaction and joint tests and replace their rows in --table",
    )
    args = parser.parse_args(argv)
    if args.replot:
        plot(pd.read_csv(args.table), Path(args.figure))
        return
    t0 = time.perf_counter()
    if args.claims_only:
        table = merge_claims(pd.read_csv(args.table), run_claims(args.reps, args.seed))
    else:
        table = run(args.reps, args.seed, args.boot_B)
    pd.set_option("display.width", 200)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.table, index=False, float_format="%.4f")
    plot(table, Path(args.figure))
    print(f"{args.reps} panels per check, {time.perf_counter() - t0:.0f}s; wrote {args.figure}")


if __name__ == "__main__":
    main()
