"""Stages of workflow/rules/report.smk: figures, SUMMARY.md with its tables, provenance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from safescale.analysis.labeling import answered, read_tidy
from safescale.analysis.metrics import HEADLINE_METRICS
from safescale.data.benchmark import read_canonical
from safescale.jsonio import read_json, write_text
from safescale.report.tables import table_condition_means, table_metrics_with_ci, write_table


def write_summary(
    *,
    config: Mapping[str, Any],
    benchmark: str,
    metrics: str,
    ci: str,
    paired: str,
    mcnemar: str,
    slopes: str,
    differences: str,
    interaction: str,
    joint: str,
    ensembles: str,
    worst: str,
    concentration: str,
    gate: str,
    parse: str,
    sim_slopes: str,
    sim_differences: str,
    sim_recovery: str,
    out_summary: str,
    out_table1: str,
    out_table2: str,
    out_intro: str,
    agentic_summary: str | None = None,
    labels: str | None = None,
) -> None:
    """SUMMARY.md, Tables 1-2 and the report's front page (what the run can and cannot
    show) from the run's tables (ensembles and worst cases are inputs so the summary is
    rebuilt when they change). `agentic_summary` (optional, results/agentic/summary.csv)
    flags models whose agentic RAG mostly fell back; `labels` (per-question labels) gives
    the high-risk power line."""
    from safescale.report.scope import flagged_agentic_models, scope_lines, scope_rst
    from safescale.report.summary import summary_markdown

    metric_table = pd.read_csv(metrics)
    skipped = metric_table[metric_table["cell_status"] == "skipped"]
    table1 = table_metrics_with_ci(
        pd.read_csv(ci), HEADLINE_METRICS, set(zip(skipped.model, skipped.condition, strict=True))
    )
    paired_table = pd.read_csv(paired)
    table2 = table_condition_means(metric_table, paired_table)
    gate_tab = pd.read_csv(gate)
    if "risk_kind" in gate_tab:
        gate_tab = gate_tab[gate_tab.risk_kind == "high_risk"]
    questions = read_canonical(benchmark)
    agentic = pd.read_csv(agentic_summary) if agentic_summary else None
    scaling = {
        "slopes": pd.read_csv(slopes),
        "diffs": pd.read_csv(differences),
        "interaction": pd.read_csv(interaction),
        "joint": pd.read_csv(joint),
    }
    scope = scope_lines(
        metrics=metric_table,
        n_questions=len(questions),
        question_meta=[q.meta for q in questions],
        mcnemar=pd.read_csv(mcnemar),
        paired=paired_table,
        agentic=agentic,
        labels=pd.read_parquet(labels) if labels else None,
        **scaling,
    )
    text = summary_markdown(
        config=config,
        metrics=metric_table,
        scope=scope,
        table1=table1,
        table2=table2,
        paired=paired_table,
        gate_tab=gate_tab,
        concentration=read_json(concentration),
        parse=pd.read_csv(parse),
        sim_slopes=pd.read_csv(sim_slopes),
        sim_diffs=pd.read_csv(sim_differences),
        sim_recovery=pd.read_csv(sim_recovery),
        agentic_fallback=flagged_agentic_models(agentic),
        **scaling,
    )
    write_table(table1, out_table1)
    write_table(table2, out_table2)
    write_text(scope_rst(scope), out_intro)
    write_text(text, out_summary)


def plot_figures(
    *,
    labels: str,
    metrics: str,
    ci: str,
    slopes: str,
    variance: str,
    ensembles: str,
    gate: str,
    curves: str,
    outputs: Mapping[str, str],
) -> None:
    """Every figure of `report.registry.FIGURES` that `outputs` names, PNG + SVG; each
    input table is read once, and only if a requested figure takes it."""
    from safescale.report.registry import figure_spec

    paths = {
        "labels": labels,
        "metrics": metrics,
        "ci": ci,
        "slopes": slopes,
        "variance": variance,
        "ensembles": ensembles,
        "gate": gate,
        "curves": curves,
    }
    readers = {"labels": _read_answered, "ensembles": _read_ensembles}
    tables: dict[str, pd.DataFrame] = {}
    for name, path in outputs.items():
        spec = figure_spec(name)
        for table in spec.inputs:
            if table not in tables:
                tables[table] = readers.get(table, pd.read_csv)(paths[table])
        spec.draw(tables, path)


def _read_answered(path: str) -> pd.DataFrame:
    """The tidy table without skipped questions: they are drawn in no figure's denominator."""
    return answered(read_tidy(path))


def _read_ensembles(path: str) -> pd.DataFrame:
    """The ensemble table; a 'skipped' marker table (too few models) reads as no ensembles."""
    table = pd.read_csv(path)
    return table.iloc[0:0] if "skipped" in table else table


def provenance(
    *, config: Mapping[str, Any], models: Sequence[str], workflow_dir: str, out_manifest: str
) -> None:
    """What produced the results: config (as written), packages, llama.cpp build, model
    hashes, and the commit of the workflow's own folder."""
    from safescale.report.provenance import write_manifest

    write_manifest(config, models, out_manifest, workflow_dir=Path(workflow_dir))
