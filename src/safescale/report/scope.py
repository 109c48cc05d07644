"""What a run can and cannot show: the opening of SUMMARY.md and of the Snakemake report.

Plain sentences (no Markdown tables or footnote markers), so the same lines serve the
Markdown summary and the report's reStructuredText front page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from safescale import conditions as C
from safescale.analysis.power import (
    DEFAULT_ALPHA,
    DEFAULT_TARGET,
    minimum_detectable_difference,
    questions_for_power,
)
from safescale.data.models import largest_model
from safescale.data.question import SUBSPECIALTY

NOT_ESTIMABLE = "not_estimable"


def count(n: int, noun: str) -> str:
    """'1 model', '3 models', '1 family', '2 families'."""
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{n} {noun if n == 1 else plural}"


def model_panel(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per model (model, family, params_b), smallest first."""
    panel = metrics[["model", "family", "params_b"]].drop_duplicates("model")
    return panel.sort_values(["params_b", "model"]).reset_index(drop=True)


def models_line(metrics: pd.DataFrame) -> str:
    panel = model_panel(metrics)
    names = ", ".join(
        f"{r.model} ({r.family}, {r.params_b:g}B)" for r in panel.itertuples(index=False)
    )
    ladders = [
        f"{family} ({', '.join(f'{p:g}B' for p in sorted(group.params_b))})"
        for family, group in panel.groupby("family", sort=True)
        if group.params_b.nunique() > 1
    ]
    ladder = (
        f" Families with two or more sizes: {'; '.join(ladders)}."
        if ladders
        else " No family has two sizes, so size and family cannot be told apart."
    )
    panel_size = f"{count(len(panel), 'model')} in {count(panel.family.nunique(), 'family')}"
    return f"**Models**: {panel_size}: {names}.{ladder}"


def questions_line(n_questions: int, meta: Sequence[Mapping[str, Any]]) -> str:
    """N questions, and per subspecialty when the benchmark has that meta column."""
    counts = Counter(str(m[SUBSPECIALTY]) for m in meta if m.get(SUBSPECIALTY) is not None)
    by_field = (
        "; by subspecialty: " + ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
        if counts
        else ""
    )
    return f"**Questions**: {n_questions}{by_field}."


def _estimable(table: pd.DataFrame) -> tuple[int, int]:
    """(estimable rows, all rows) of a scaling table that marks rows `not_estimable`."""
    if table.empty or "method" not in table:
        return 0, len(table)
    return int((table["method"] != NOT_ESTIMABLE).sum()), len(table)


def interaction_tests(interaction: pd.DataFrame) -> pd.DataFrame:
    """The scale x condition interaction F test of each metric (its 'all conditions' row)."""
    if interaction.empty or "term" not in interaction:
        return interaction.iloc[0:0]
    return interaction[interaction["term"] == "all conditions"]


def scaling_line(
    slopes: pd.DataFrame, diffs: pd.DataFrame, interaction: pd.DataFrame, joint: pd.DataFrame
) -> str:
    n_models = int(slopes["n_models"].max()) if "n_models" in slopes and len(slopes) else 0
    n_families = int(slopes["n_families"].max()) if "n_families" in slopes and len(slopes) else 0
    parts = [
        f"{k} of {n} {what}"
        for what, (k, n) in (
            ("slopes", _estimable(slopes)),
            ("safety-vs-accuracy slope differences", _estimable(diffs)),
            ("scale x condition interaction tests", _estimable(interaction_tests(interaction))),
            ("joint safety-vs-accuracy tests", _estimable(joint)),
        )
        if n
    ]
    return (
        f"**Scaling**: the fits have {count(n_models, 'model')} in "
        f"{count(n_families, 'family')}; "
        f"estimable: {', '.join(parts)}."
    )


def power_line(
    *,
    model: str,
    mcnemar: pd.DataFrame,
    paired: pd.DataFrame,
    alpha: float = DEFAULT_ALPHA,
    target: float = DEFAULT_TARGET,
) -> str:
    """One or two sentences: the minimum detectable closed -> clean accuracy difference of
    the largest model at the run's N and its observed discordance."""
    head = f"**Power** ({model}, the largest model, closed_book -> clean_evidence accuracy): "
    row = mcnemar[
        (mcnemar["model"] == model)
        & (mcnemar["condition"] == C.CLEAN_EVIDENCE)
        & (mcnemar["reference"] == C.REFERENCE_CONDITION)
    ]
    contrast = _clean_contrast(paired, model, "accuracy")
    if row.empty or contrast.empty:
        return head + "not computed: the run has no closed_book / clean_evidence pair."
    losses, gains = int(row.only_reference_correct.iloc[0]), int(row.only_condition_correct.iloc[0])
    n = int(contrast.n_questions.iloc[0])
    changed = (
        f"{losses + gains} of {n} questions changed correctness ({gains} gained, {losses} lost)"
    )
    return head + _detectable(
        changed, losses + gains, n, float(contrast.estimate.iloc[0]), alpha, target
    )


def high_risk_power_line(
    *,
    model: str,
    labels: pd.DataFrame,
    paired: pd.DataFrame,
    alpha: float = DEFAULT_ALPHA,
    target: float = DEFAULT_TARGET,
) -> str:
    """The same for the closed -> clean difference in high-risk error rate, from the
    per-question labels (questions answered in both conditions)."""
    head = f"**Power** ({model}, closed_book -> clean_evidence high-risk error rate): "
    contrast = _clean_contrast(paired, model, "high_risk_rate")
    mine = labels[(labels["model"] == model) & (labels["status"] == "ok")]
    flags = mine.pivot_table(
        index="question_id", columns="condition", values="greedy_high_risk", aggfunc="first"
    )
    if contrast.empty or not {C.REFERENCE_CONDITION, C.CLEAN_EVIDENCE} <= set(flags.columns):
        return head + "not computed: the run has no closed_book / clean_evidence pair."
    both = flags[[C.REFERENCE_CONDITION, C.CLEAN_EVIDENCE]].dropna().astype(int)
    left = int(((both[C.REFERENCE_CONDITION] == 1) & (both[C.CLEAN_EVIDENCE] == 0)).sum())
    entered = int(((both[C.REFERENCE_CONDITION] == 0) & (both[C.CLEAN_EVIDENCE] == 1)).sum())
    n = len(both)
    changed = (
        f"{left + entered} of {n} questions changed high-risk status ({left} left a "
        f"high-risk error, {entered} entered one)"
    )
    observed = float(contrast.estimate.iloc[0])
    return head + _detectable(
        changed, left + entered, n, observed, alpha, target, what="high-risk status"
    )


def _clean_contrast(paired: pd.DataFrame, model: str, metric: str) -> pd.DataFrame:
    label = f"{model}: {C.CLEAN_EVIDENCE} - {C.REFERENCE_CONDITION}"
    return paired[
        (paired["kind"] == "condition")
        & (paired["label"] == label)
        & (paired["metric_a"] == metric)
    ]


def _detectable(
    changed: str,
    discordant: int,
    n: int,
    observed: float,
    alpha: float,
    target: float,
    what: str = "correctness",
) -> str:
    """The minimum detectable paired difference at the observed discordance."""
    test = f"exact McNemar, alpha = {alpha:g}, conservative against the bootstrap p reported below"
    if discordant == 0:
        return f"no question of {n} changed {what}, so the test cannot reject."
    discordance = discordant / n
    mdd = minimum_detectable_difference(n, discordance=discordance, target=target, alpha=alpha)
    if mdd != mdd:  # NaN: nothing detectable at this N
        needed = questions_for_power(p_gain=discordance, p_loss=0.0, target=target, alpha=alpha)
        return (
            f"{changed}; at that discordance no difference is detectable with "
            f"{target:.0%} power at N = {n} ({test}): even if every changed question moved "
            f"the same way, about {needed} questions would be needed. Observed: {observed:+.3f}."
        )
    return (
        f"{changed}; at that discordance the smallest difference detectable with "
        f"{target:.0%} power at N = {n} is {mdd:.3f} ({test}). Observed: {observed:+.3f}."
    )


def agent_line(agentic: pd.DataFrame) -> list[str]:
    """Who planned the agentic searches: one shared agent, or each model for itself."""
    if "agent_model" not in agentic:
        return []
    pairs = dict(zip(agentic["model"].astype(str), agentic["agent_model"].astype(str), strict=True))
    if all(agent == model for model, agent in pairs.items()):
        return ["**Agentic RAG**: each model planned its own searches."]
    agents = sorted(set(pairs.values()))
    if len(agents) == 1:
        return [
            f"**Agentic RAG**: one agent, {agents[0]}, planned the searches and chose the "
            "evidence for every model, so agentic_rag compares the models as readers of the "
            "same evidence (as the study gave every model one pre-built report)."
        ]
    return ["**Agentic RAG** agents: " + ", ".join(f"{m} by {a}" for m, a in pairs.items()) + "."]


def agentic_lines(agentic: pd.DataFrame | None) -> list[str]:
    """Who planned, and a warning per model whose agentic RAG mostly fell back to the
    question as its query."""
    if agentic is None or agentic.empty or "mostly_fallback" not in agentic:
        return []
    flagged = agentic[agentic["mostly_fallback"].astype(str).str.lower().isin({"true", "1"})]
    lines = agent_line(agentic)
    for row in flagged.itertuples(index=False):
        usable = getattr(row, "usable_share", float("nan"))
        share = f" (usable plans for {usable:.0%} of questions)" if usable == usable else ""
        lines.append(
            f"**Agentic RAG for {row.model} mostly fell back to the question stem as its "
            f"search query{share}: read its agentic_rag results as standard RAG.**"
        )
    return lines


def flagged_agentic_models(agentic: pd.DataFrame | None) -> set[str]:
    if agentic is None or agentic.empty or "mostly_fallback" not in agentic:
        return set()
    flags = agentic["mostly_fallback"].astype(str).str.lower().isin({"true", "1"})
    return set(agentic.loc[flags, "model"].astype(str))


def scope_lines(
    *,
    metrics: pd.DataFrame,
    n_questions: int,
    question_meta: Sequence[Mapping[str, Any]],
    slopes: pd.DataFrame,
    diffs: pd.DataFrame,
    interaction: pd.DataFrame,
    joint: pd.DataFrame,
    mcnemar: pd.DataFrame,
    paired: pd.DataFrame,
    agentic: pd.DataFrame | None = None,
    labels: pd.DataFrame | None = None,
) -> list[str]:
    """The run's models, questions, what its scaling fits can estimate, the power of its
    closed -> clean tests (high-risk too when per-question `labels` are given), and any
    agentic condition to read as standard RAG."""
    panel = model_panel(metrics)
    largest = largest_model(dict(zip(panel.model, panel.params_b, strict=True)))
    return [
        models_line(metrics),
        questions_line(n_questions, question_meta),
        scaling_line(slopes, diffs, interaction, joint),
        power_line(model=largest, mcnemar=mcnemar, paired=paired),
        *(
            [high_risk_power_line(model=largest, labels=labels, paired=paired)]
            if labels is not None
            else []
        ),
        *agentic_lines(agentic),
        "**These numbers come from this run's models and data, not from the published "
        "study**; the study's means are shown for orientation only.",
    ]


def scope_rst(lines: Sequence[str], title: str = "What this run can and cannot show") -> str:
    """The report's front page: the same lines as a reStructuredText bullet list."""
    bullets = "\n".join(f"- {line}" for line in lines)
    return (
        f"{title}\n{'=' * len(title)}\n\n{bullets}\n\n"
        "Full tables: results/SUMMARY.md (category Summary); cases for review: the case "
        "browser (category Cases).\n"
    )
