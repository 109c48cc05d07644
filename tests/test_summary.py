"""SUMMARY.md text: scope first, claims on adjusted p, footnotes once, not-estimable once."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from safescale.report.notes import Footnotes, shared_reason
from safescale.report.scope import flagged_agentic_models, scope_lines, scope_rst
from safescale.report.summary import summary_markdown

MODELS = {"tiny": ("Other", 0.3), "small": ("Qwen", 0.5), "big": ("Qwen", 1.5)}
CONDITIONS = ("closed_book", "clean_evidence", "conflict_evidence", "agentic_rag")
FALLBACK = (
    "mixedlm skipped: one model per family; ols: 3 models, 1 residual df (< 3): no interval "
    "or test is supported; the line through them has slope {:+.4f} per decade"
)
CONFIG = {
    "conditions": list(CONDITIONS),
    "benchmark": {"path": "bench.csv"},
    "retrieval": {"retriever": "bm25"},
    "analysis": {"bootstrap_B": 1000, "bootstrap_seed": 42, "gate_target_risk": 0.01},
}


def metrics() -> pd.DataFrame:
    rows = []
    for i, (model, (family, params)) in enumerate(MODELS.items()):
        for j, condition in enumerate(CONDITIONS):
            rows.append(
                {
                    "model": model,
                    "family": family,
                    "params_b": params,
                    "condition": condition,
                    "n_questions": 40,
                    "n_skipped": 0,
                    "cell_status": "ok",
                    "accuracy": 0.3 + 0.1 * i + 0.05 * j,
                    "high_risk_rate": 0.4 - 0.1 * i,
                    "unsafe_rate": 0.2,
                    "contradiction_rate": 0.3,
                    "dangerous_overconfidence_rate": 0.0,
                }
            )
    return pd.DataFrame(rows)


def paired_row(kind, model, condition, reference, metric, p, p_holm) -> dict:
    return {
        "kind": kind,
        "label": f"{model}: {condition} - {reference}",
        "metric_a": metric,
        "estimate": 0.2,
        "ci_low": 0.05,
        "ci_high": 0.35,
        "p_value": p,
        "p_holm": p_holm,
        "p_bh": p_holm,
        "n_questions": 40,
    }


def paired() -> pd.DataFrame:
    rows = [
        paired_row("condition", "big", "clean_evidence", "closed_book", "accuracy", 0.002, 0.006),
        paired_row("condition", "small", "clean_evidence", "closed_book", "accuracy", 0.03, 0.06),
        paired_row("condition", "tiny", "clean_evidence", "closed_book", "accuracy", 0.5, 0.5),
        paired_row("condition", "big", "standard_rag", "closed_book", "accuracy", 0.001, 0.001),
        paired_row(
            "conflict_vs_clean", "big", "conflict_evidence", "clean_evidence", "high_risk_rate",
            0.2, 0.4,
        ),
    ]  # fmt: skip
    return pd.DataFrame(rows)


def scaling_tables() -> dict[str, pd.DataFrame]:
    slopes = pd.DataFrame(
        [
            {"metric": "accuracy", "condition": c, "slope": None, "ci_low": None, "ci_high": None,
             "p": None, "p_holm": None, "method": "not_estimable", "n_models": 3,
             "n_families": 2, "note": FALLBACK.format(0.1 * k)}
            for k, c in enumerate(("closed_book", "clean_evidence", "conflict_evidence"))
        ]
        + [
            {"metric": "high_risk_rate", "condition": "closed_book", "slope": -0.123,
             "ci_low": -0.2, "ci_high": -0.05, "df": 1.0, "p": 0.01, "p_holm": 0.03,
             "method": "ols_family_fixed", "n_models": 3, "n_families": 2, "note": ""}
        ]
    )  # fmt: skip
    diffs = pd.DataFrame(
        [{"safety_metric": "high_risk_rate", "reference": "error_rate (1 - accuracy)",
          "condition": "closed_book", "diff": None, "method": "not_estimable",
          "note": FALLBACK.format(0.777)}]
    )  # fmt: skip
    interaction = pd.DataFrame(
        [
            {"metric": "accuracy", "term": "all conditions", "statistic": 4.2, "df_num": 3.0,
             "df_den": 6.0, "p": 0.04, "p_holm": 0.08, "p_bh": 0.08, "n_models": 3,
             "n_conditions": 4, "method": "ols_model_fixed_fgls", "note": "model fixed effects"},
            {"metric": "accuracy", "term": "slope[clean_evidence] - slope[closed_book]",
             "statistic": 1.0, "method": "ols_model_fixed_fgls", "note": ""},
            {"metric": "unsafe_rate", "term": "all conditions", "method": "not_estimable",
             "note": "fewer than 2 conditions with a varying metric"},
        ]
    )  # fmt: skip
    joint = pd.DataFrame(
        [{"condition": "closed_book", "reference": "error_rate (1 - accuracy)",
          "safety_metrics": "high_risk_rate", "method": "not_estimable",
          "note": "3 models for 3 metrics: -1 denominator df (< 3)"}]
    )  # fmt: skip
    return {"slopes": slopes, "diffs": diffs, "interaction": interaction, "joint": joint}


def mcnemar() -> pd.DataFrame:
    return pd.DataFrame(
        [{"model": "big", "condition": "clean_evidence", "reference": "closed_book",
          "only_reference_correct": 2, "only_condition_correct": 14}]
    )  # fmt: skip


def render(agentic: pd.DataFrame | None = None) -> tuple[list[str], str]:
    m = metrics()
    meta = [{"subspecialty": "neuro"}] * 25 + [{"subspecialty": "msk"}] * 15
    scope = scope_lines(
        metrics=m,
        n_questions=40,
        question_meta=meta,
        mcnemar=mcnemar(),
        paired=paired(),
        agentic=agentic,
        **scaling_tables(),
    )
    table1 = m[["model", "condition", "accuracy"]]
    text = summary_markdown(
        config=CONFIG,
        metrics=m,
        scope=scope,
        table1=table1,
        table2=m.groupby("condition", as_index=False)[["accuracy"]].mean(),
        paired=paired(),
        gate_tab=pd.DataFrame({"model": ["big"], "condition": ["agentic_rag"], "aurc": [0.3]}),
        concentration={"n_questions": 40, "top_share": 0.5},
        parse=pd.DataFrame({"model": ["big"], "condition": ["closed_book"], "n_ok": [40]}),
        sim_slopes=pd.DataFrame({"metric": ["accuracy"], "slope": [0.05]}),
        sim_diffs=pd.DataFrame({"safety_metric": ["high_risk_rate"], "note": ["boundary"]}),
        sim_recovery=pd.DataFrame({"overall_coverage": [0.95]}),
        agentic_fallback=flagged_agentic_models(agentic),
        **scaling_tables(),
    )
    return scope, text


def test_summary_opens_with_what_the_run_can_show() -> None:
    scope, text = render()
    assert text.index("## What this run can and cannot show") < text.index("## Headline")
    assert text.index("## Headline") < text.index("## Paired contrasts") < text.index("## Scaling")
    models, questions, scaling, power = scope[:4]
    assert "3 models in 2 families" in models and "tiny (Other, 0.3B)" in models
    assert "Qwen (0.5B, 1.5B)" in models
    assert questions == "**Questions**: 40; by subspecialty: msk 15, neuro 25."
    assert "1 of 4 slopes" in scaling and "1 of 2 scale x condition interaction tests" in scaling
    assert power.startswith("**Power** (big, the largest model")
    assert "16 of 40 questions changed correctness (14 gained, 2 lost)" in power
    mdd = float(re.search(r"detectable with 80% power at N = 40 is ([\d.]+)", power).group(1))
    assert 0 < mdd < 16 / 40 and "conservative against the bootstrap p" in power
    assert scope_rst(scope).startswith("What this run can and cannot show\n=====")


def test_headline_per_model_beside_the_study() -> None:
    _, text = render()
    header = next(line for line in text.splitlines() if line.startswith("| metric | condition |"))
    assert header == (
        "| metric | condition | tiny | small | big | mean_over_models | study_mean_34_models |"
    )
    assert "| accuracy | closed_book | 0.300 | 0.400 | 0.500 | 0.400 | 0.735 |" in text


def test_claims_are_worded_on_holm_adjusted_p() -> None:
    _, text = render()
    claims = text.split("Claims are worded on")[1].split("| contrast |")[0]
    assert "- big, accuracy, clean_evidence - closed_book: +0.200 [0.050, 0.350], " in claims
    assert "Holm-adjusted p = 0.006" in claims
    assert "small" not in claims  # raw p 0.03 but Holm 0.06: not claimed
    assert "1 contrast(s) have raw p < 0.05 but do not survive the Holm adjustment" in claims
    assert "standard_rag" not in text.split("## Scaling")[0]  # only closed->clean, clean->conflict
    assert "| conflict_evidence - clean_evidence | big | high_risk_rate |" in text


def test_fallback_notes_are_one_footnote_and_not_estimable_is_said_once() -> None:
    _, text = render()
    assert (
        text.count("not estimable with this panel") + text.count("Not estimable with this panel")
        == 1
    )
    assert "3 of 4 slopes, 1 of 1 safety-vs-accuracy slope differences" in text
    shared = "mixedlm skipped: one model per family; ols: 3 models, 1 residual df (< 3)"
    assert text.count(shared) == 1  # one footnote, not one copy per row
    definition = next(line for line in text.splitlines() if shared in line)
    assert definition.startswith("[^") and definition.endswith("(4 rows)")
    marker = definition.split(":")[0]
    assert text.count(marker) == 2  # cited once in the sentence, defined once
    # no slope, CI or descriptive line for rows that are not estimable
    assert "per decade" not in text and "+0.7770" not in text
    slope_table = text.split("### Slopes")[1].split("###")[0]
    assert "| high_risk_rate | closed_book | -0.123 |" in slope_table
    assert "| accuracy |" not in slope_table
    assert "| 1 |" in slope_table  # whole df printed as an integer
    interaction = text.split("### Scale x condition interaction")[1].split("###")[0]
    assert "| accuracy | 4.200 | 3 | 6 |" in interaction and "unsafe_rate" not in interaction
    assert "### Joint test" not in text  # its only row is not estimable


def test_agentic_fallback_is_flagged() -> None:
    agentic = pd.DataFrame(
        {"model": ["small", "big"], "usable_share": [0.1, 0.9], "mostly_fallback": [True, False]}
    )
    scope, text = render(agentic)
    flag = "Agentic RAG for small mostly fell back to the question stem as its search query"
    assert any(flag in line for line in scope) and "usable plans for 10% of questions" in text
    assert "read its agentic_rag results as standard RAG" in text
    assert "Agentic RAG for big" not in text
    assert re.search(r"\| small \| agentic_rag\[\^\d+\] \|", text)
    assert re.search(r"\| big \| agentic_rag \|", text)
    _, plain = render()
    assert "fell back" not in plain


def test_summary_says_who_planned_the_agentic_searches() -> None:
    def planners(agents: list[str]) -> str:
        agentic = pd.DataFrame(
            {"model": ["small", "big"], "agent_model": agents, "mostly_fallback": [False] * 2}
        )
        return "\n".join(render(agentic)[0])

    assert "one agent, big, planned the searches and chose the evidence for every model" in (
        planners(["big", "big"])
    )
    assert "each model planned its own searches" in planners(["small", "big"])
    assert "small by big, big by small" in planners(["big", "small"])


def test_footnotes_share_one_definition() -> None:
    notes = Footnotes()
    a = notes.mark(shared_reason(FALLBACK.format(0.1)))
    b = notes.mark(shared_reason(FALLBACK.format(-2.5)))
    assert a == b == "[^1]" and notes.mark("") == "" and notes.mark(None) == ""
    assert notes.markdown().count("[^1]:") == 1 and notes.markdown().endswith("(2 rows)")
    assert shared_reason("outcome constant (all 0.1875): zero variance") == (
        "outcome constant: zero variance"
    )


@pytest.mark.parametrize("losses,gains", [(0, 0), (1, 1)])
def test_power_line_without_enough_discordance(losses: int, gains: int) -> None:
    from safescale.report.scope import power_line

    table = mcnemar().assign(only_reference_correct=losses, only_condition_correct=gains)
    line = power_line(model="big", mcnemar=table, paired=paired())
    if losses + gains == 0:
        assert "no question of 40 changed correctness" in line
    else:
        assert "no difference is detectable with 80% power at N = 40" in line
        assert re.search(r"about \d+ questions would be needed", line)


def test_high_risk_power_line_counts_questions_that_left_or_entered_a_high_risk_error():
    from safescale.report.scope import high_risk_power_line

    rows = []
    for i in range(40):  # 10 leave a high-risk error, 2 enter one, 1 skipped in clean
        closed, clean = (1, 0) if i < 10 else (0, 1) if i < 12 else (i % 2, i % 2)
        rows.append(
            {
                "model": "big",
                "condition": "closed_book",
                "question_id": f"q{i}",
                "status": "ok",
                "greedy_high_risk": closed,
            }
        )
        rows.append(
            {
                "model": "big",
                "condition": "clean_evidence",
                "question_id": f"q{i}",
                "status": "skipped" if i == 39 else "ok",
                "greedy_high_risk": clean,
            }
        )
    rows.append({"model": "small", "condition": "closed_book", "question_id": "q0",
                 "status": "ok", "greedy_high_risk": 1})  # fmt: skip
    table = paired().assign(metric_a="high_risk_rate", estimate=-0.2)
    line = high_risk_power_line(model="big", labels=pd.DataFrame(rows), paired=table)
    assert "12 of 39 questions changed high-risk status (10 left" in line
    assert "2 entered one" in line and "Observed: -0.200" in line
    assert re.search(r"smallest difference detectable with 80% power at N = 39 is 0\.\d+", line)
    none = high_risk_power_line(model="other", labels=pd.DataFrame(rows), paired=table)
    assert "not computed" in none
