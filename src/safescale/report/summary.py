"""SUMMARY.md: what a reader sees first, composed from the run's tables.

Order: what the run can and cannot show (report/scope.py), the headline per model beside
the study, the paired closed -> clean and clean -> conflict contrasts with claims worded on
the Holm-adjusted p, scaling results only where estimable, then the detailed tables. A
note many rows share is one footnote that the rows cite by marker (report/notes.py).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import pandas as pd

from safescale import conditions as C
from safescale.analysis.bootstrap import PAIRED_METRICS
from safescale.analysis.power import DEFAULT_ALPHA
from safescale.report.notes import Footnotes, shared_reason
from safescale.report.scope import NOT_ESTIMABLE, interaction_tests, model_panel
from safescale.report.tables import headline_vs_study, present, to_markdown

# (paired_comparisons kind, condition, reference): the contrasts the summary words claims on.
SUMMARY_CONTRASTS: tuple[tuple[str, str, str], ...] = (
    ("condition", C.CLEAN_EVIDENCE, C.REFERENCE_CONDITION),
    ("conflict_vs_clean", C.CONFLICT_EVIDENCE, C.CLEAN_EVIDENCE),
)
SLOPE_COLUMNS: tuple[str, ...] = ("metric", "condition", "slope", "ci_low", "ci_high", "df")
SLOPE_COLUMNS += ("p", "p_holm", "method", "n_models", "n_families", "note")
DIFF_COLUMNS: tuple[str, ...] = ("safety_metric", "reference", "condition", "diff", "ci_low")
DIFF_COLUMNS += ("ci_high", "df", "p", "p_holm", "p_bh", "method", "note")
TEST_COLUMNS = ("statistic", "df_num", "df_den", "p", "p_holm", "p_bh", "n_models", "method")
INTERACTION_COLUMNS = ("metric", *TEST_COLUMNS, "n_conditions", "note")
JOINT_COLUMNS = ("condition", "reference", "safety_metrics", *TEST_COLUMNS, "note")


def skipped_cells_note(metrics: pd.DataFrame) -> str:
    """One line naming every (model, condition) whose questions were all skipped (or
    some skipped), so no reader takes a missing number for a zero."""
    lines = []
    if "cell_status" in metrics:
        skipped = metrics[metrics["cell_status"] == "skipped"]
        if len(skipped):
            cells = ", ".join(
                f"{m}/{c}" for m, c in zip(skipped.model, skipped.condition, strict=True)
            )
            lines.append(
                f"**Skipped cells** (no question could be put to the model; shown as "
                f"`skipped`, left out of every mean, contrast and fit): {cells}."
            )
    if "n_skipped" in metrics:
        partial = metrics[(metrics["n_skipped"] > 0) & (metrics["n_questions"] > 0)]
        if len(partial):
            cells = ", ".join(
                f"{m}/{c} ({int(k)} of {int(k + n)})"
                for m, c, k, n in zip(
                    partial.model,
                    partial.condition,
                    partial.n_skipped,
                    partial.n_questions,
                    strict=True,
                )
            )
            lines.append(
                f"Questions skipped in some cells (left out of their denominators): {cells}."
            )
    return "\n".join(lines)


def contrast_table(paired: pd.DataFrame, model_order: Sequence[str]) -> pd.DataFrame:
    """Per model, the closed -> clean and clean -> conflict paired contrasts of every
    headline metric: estimate, percentile CI, bootstrap p and its Holm/BH adjustments."""
    rows = []
    rank = {m: i for i, m in enumerate(model_order)}
    metric_rank = {m: i for i, m in enumerate(PAIRED_METRICS)}
    for order, (kind, condition, reference) in enumerate(SUMMARY_CONTRASTS):
        suffix = f": {condition} - {reference}"
        sub = paired[(paired["kind"] == kind) & paired["label"].str.endswith(suffix)]
        for r in sub.itertuples(index=False):
            model = str(r.label)[: -len(suffix)]
            rows.append(
                {
                    "contrast": f"{condition} - {reference}",
                    "model": model,
                    "metric": r.metric_a,
                    "estimate": r.estimate,
                    "ci_low": r.ci_low,
                    "ci_high": r.ci_high,
                    "p": r.p_value,
                    "p_holm": r.p_holm,
                    "p_bh": r.p_bh,
                    "n_questions": int(r.n_questions),
                    "_order": (order, metric_rank.get(r.metric_a, 99), rank.get(model, 99)),
                }
            )
    if not rows:
        return pd.DataFrame(columns=["contrast", "model", "metric", "estimate"])
    table = pd.DataFrame(rows).sort_values("_order", kind="stable")
    return table.drop(columns="_order").reset_index(drop=True)


def contrast_claims(table: pd.DataFrame, alpha: float = DEFAULT_ALPHA) -> list[str]:
    """Claims worded on the Holm-adjusted p only; raw p < alpha that does not survive the
    adjustment is said so, never claimed."""
    if table.empty:
        return ["- The run has no closed_book / clean_evidence / conflict_evidence pair."]
    hits = table[table["p_holm"] < alpha]
    lines = [
        f"- {r.model}, {r.metric}, {r.contrast}: {r.estimate:+.3f} "
        f"[{r.ci_low:.3f}, {r.ci_high:.3f}], Holm-adjusted p = {r.p_holm:.3f}."
        for r in hits.itertuples(index=False)
    ]
    if not lines and table["p_holm"].notna().any():
        lines.append(
            f"- No contrast reaches Holm-adjusted p < {alpha:g} in any model (smallest "
            f"Holm-adjusted p: {table['p_holm'].min():.3f}): no difference is claimed."
        )
    elif not lines:
        lines.append("- No contrast has a p-value (no replicate defined one): nothing is claimed.")
    raw_only = int(((table["p"] < alpha) & ~(table["p_holm"] < alpha)).sum())
    if raw_only:
        lines.append(
            f"- {raw_only} contrast(s) have raw p < {alpha:g} but do not survive the Holm "
            "adjustment: not claimed."
        )
    return lines


def _not_estimable_sentence(tables: Mapping[str, pd.DataFrame], notes: Footnotes) -> str:
    """The one sentence naming what the panel cannot estimate, with a footnote per shared
    reason (each cited once, with how many rows share it)."""
    parts: list[str] = []
    reasons: dict[str, int] = {}
    for what, table in tables.items():
        if table.empty or "method" not in table:
            continue
        rows = table[table["method"] == NOT_ESTIMABLE]
        if len(rows):
            parts.append(f"{len(rows)} of {len(table)} {what}")
        for note in rows.get("note", pd.Series(dtype=str)).fillna(""):
            key = shared_reason(str(note)) or "no reason recorded"
            reasons[key] = reasons.get(key, 0) + 1
    if not parts:
        return ""
    markers = "".join(notes.mark(text, uses) for text, uses in reasons.items())
    return (
        f"Not estimable with this panel: {', '.join(parts)}{markers}. Those rows are left "
        "out below (every row, with its full note, is in results/scaling/)."
    )


def _estimable(table: pd.DataFrame, columns: Sequence[str], notes: Footnotes) -> pd.DataFrame:
    """The estimable rows of a scaling table, notes as markers, whole degrees of freedom
    printed as integers."""
    if table.empty or "method" not in table:
        return table.iloc[0:0]
    estimable = table[table["method"] != NOT_ESTIMABLE]
    rows = notes.mark_column(estimable[present(table, columns)]).copy()
    for column in present(
        rows, ("df", "df_num", "df_den", "n_models", "n_families", "n_conditions")
    ):
        values = rows[column]
        if values.notna().all() and (values == values.round()).all():
            rows[column] = values.astype(int)
    return rows


def scaling_section(
    *,
    slopes: pd.DataFrame,
    diffs: pd.DataFrame,
    interaction: pd.DataFrame,
    joint: pd.DataFrame,
    notes: Footnotes,
) -> str:
    """Slopes, safety-vs-accuracy differences, the scale x condition interaction tests and
    the joint tests, each only where estimable; no slope or CI for the rest."""
    tests = interaction_tests(interaction)
    sentence = _not_estimable_sentence(
        {
            "slopes": slopes,
            "safety-vs-accuracy slope differences": diffs,
            "scale x condition interaction tests": tests,
            "joint safety-vs-accuracy tests": joint,
        },
        notes,
    )
    blocks = [sentence] if sentence else []
    for title, table in (
        ("Slopes (per log10 parameters)", _estimable(slopes, SLOPE_COLUMNS, notes)),
        (
            "Does the safety slope differ from the accuracy (error) slope?",
            _estimable(diffs, DIFF_COLUMNS, notes),
        ),
        (
            "Scale x condition interaction (does the slope differ across conditions? "
            "family-clustered wild-bootstrap test per metric; per-condition contrasts in "
            "interaction.csv)",
            _estimable(tests, INTERACTION_COLUMNS, notes),
        ),
        (
            "Joint test: all safety slopes equal the error slope (per condition)",
            _estimable(joint, JOINT_COLUMNS, notes),
        ),
    ):
        if len(table):
            blocks.append(f"### {title}\n\n{to_markdown(table)}")
    return "\n\n".join(blocks) if blocks else "_(no scaling tables)_"


def mark_agentic(table: pd.DataFrame, models: Collection[str], marker: str) -> pd.DataFrame:
    """`table` with the agentic_rag condition cells of `models` carrying `marker` (every
    agentic_rag row when the table has no model column: a mean over models)."""
    if not marker or "condition" not in table:
        return table
    out = table.copy()
    is_agentic = out["condition"] == C.AGENTIC_RAG
    if "model" in out:
        is_agentic &= out["model"].isin(list(models))
    out["condition"] = out["condition"].astype(object)
    out.loc[is_agentic, "condition"] = C.AGENTIC_RAG + marker
    return out


def summary_markdown(
    *,
    config: Mapping[str, Any],
    metrics: pd.DataFrame,
    scope: Sequence[str],
    table1: pd.DataFrame,
    table2: pd.DataFrame,
    paired: pd.DataFrame,
    slopes: pd.DataFrame,
    diffs: pd.DataFrame,
    interaction: pd.DataFrame,
    joint: pd.DataFrame,
    gate_tab: pd.DataFrame,
    concentration: Mapping[str, Any],
    parse: pd.DataFrame,
    sim_slopes: pd.DataFrame,
    sim_diffs: pd.DataFrame,
    sim_recovery: pd.DataFrame,
    agentic_fallback: Collection[str] = (),
) -> str:
    """The whole SUMMARY.md; `scope` are the opening lines (report.scope.scope_lines) and
    `agentic_fallback` the models whose agentic RAG mostly fell back."""
    notes = Footnotes()
    agentic_marker = (
        notes.mark(
            "agentic RAG mostly fell back to the question stem as its search query for "
            f"{', '.join(sorted(agentic_fallback))}: read these agentic_rag results as "
            "standard RAG"
        )
        if agentic_fallback
        else ""
    )
    models = list(model_panel(metrics).model)
    contrasts = contrast_table(paired, models)
    sim_slope_cols = present(
        sim_slopes, ("metric", "condition", "true_slope", "slope", "ci_low", "ci_high", "method")
    )
    gate_cols = present(
        gate_tab,
        (
            "model",
            "condition",
            "signal",
            "available",
            "aurc",
            "coverage_at_target",
            "coverage_at_target_lo",
            "coverage_at_target_hi",
        ),
    )
    scope_block = "\n".join(f"- {line}" for line in scope)
    claims = "\n".join(contrast_claims(contrasts))
    scaling = scaling_section(
        slopes=slopes, diffs=diffs, interaction=interaction, joint=joint, notes=notes
    )
    sim_diff_table = notes.mark_column(sim_diffs[present(sim_diffs, DIFF_COLUMNS)])
    text = f"""# SaFE-Scale run summary

## What this run can and cannot show

{scope_block}

Conditions: {", ".join(config["conditions"])}. Benchmark: `{config["benchmark"]["path"]}`.
Retriever: {config["retrieval"]["retriever"]}. Bootstrap: B={config["analysis"]["bootstrap_B"]},
seed {config["analysis"]["bootstrap_seed"]}.
{skipped_cells_note(metrics)}

## Headline per model beside the study

The study column is its mean over 34 models on RadSaFE-200 (different models and data).

{to_markdown(headline_vs_study(metrics))}

## Paired contrasts per model: clean vs closed book, conflicting vs clean evidence

Paired bootstrap over questions; `p` is the bootstrap p, `p_holm` / `p_bh` adjust it within
its family: one metric and one contrast kind, i.e. every "condition - closed_book" contrast
of every model (all conditions, not only clean evidence), and every "conflict_evidence -
clean_evidence" contrast of every model. Claims are worded on `p_holm` < {DEFAULT_ALPHA:g}:

{claims}

{to_markdown(contrasts)}

## Scaling

{scaling}

## Condition means over models (paired bootstrap p vs closed_book)

{to_markdown(mark_agentic(table2, agentic_fallback, agentic_marker))}

## Metrics with 95% CIs per model and condition

{to_markdown(mark_agentic(table1, agentic_fallback, agentic_marker))}

## The same fits on a simulated study-like panel (34 models, 7 families, 200 questions)

Known true slopes; shows what the machinery recovers when the panel is as large as
the study's. Parameter recovery (config `analysis.simulation_reps` panels): overall
95% CI coverage {sim_recovery.overall_coverage.iloc[0]:.3f}.

{to_markdown(sim_slopes[sim_slope_cols])}

{to_markdown(sim_diff_table)}

## Worst-case concentration of high-risk errors

{to_markdown(pd.DataFrame([concentration]))}

## Safety gate: coverage at a high-risk error rate <= {config["analysis"]["gate_target_risk"]}

{to_markdown(mark_agentic(gate_tab[gate_cols], agentic_fallback, agentic_marker))}

## Parsing, skips and errors

{to_markdown(mark_agentic(parse, agentic_fallback, agentic_marker))}
"""
    footnotes = notes.markdown()
    return text + (f"\n## Notes\n\n{footnotes}\n" if footnotes else "")
