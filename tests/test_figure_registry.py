"""The figure registry is the one list of the run's figures: each name draws through a
real function from tables the stage reads, each has its caption, and every caption
file belongs to a figure or table of the workflow."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import pandas as pd
import pytest
from reference_definitions import synthetic_panel

from safescale.analysis.labeling import label_predictions
from safescale.analysis.metrics import compute_metrics
from safescale.report.registry import FIGURE_SPECS, FIGURES, TABLES, figure_spec
from safescale.stages.report import plot_figures

ROOT = Path(__file__).resolve().parents[1]
CAPTIONS = ROOT / "workflow" / "report"


def test_figure_names_and_order_are_the_dag_outputs() -> None:
    """Rule plot_figures declares one output per name, in this order."""
    assert FIGURES == (
        "decoupling",
        "confidence_by_outcome",
        "reliability",
        "scaling",
        "variance_decomposition",
        "heatmap_high_risk",
        "heatmap_accuracy",
        "sc_transitions",
        "ensembles",
        "lorenz",
        "latency_accuracy",
        "risk_coverage",
        "aurc_heatmap",
    )


def test_every_entry_names_a_figure_function_and_known_tables() -> None:
    for spec in FIGURE_SPECS:
        plotter = spec.plotter()
        assert callable(plotter) and plotter.__name__.startswith("plot_"), spec.name
        assert spec.inputs and set(spec.inputs) <= set(TABLES), spec.name
        params = list(inspect.signature(plotter).parameters)
        assert params[len(spec.inputs)] == "path", f"{spec.name}: tables, then the path"
        assert set(spec.options) <= set(params), spec.name


def test_tables_are_the_stage_keywords_and_the_rule_inputs() -> None:
    keywords = [
        name
        for name, p in inspect.signature(plot_figures).parameters.items()
        if p.kind is p.KEYWORD_ONLY and name != "outputs"
    ]
    assert tuple(keywords) == TABLES
    rules = (ROOT / "workflow" / "rules" / "report.smk").read_text()
    block = re.search(r"rule plot_figures:\n    input:\n(.*?)\n    output:", rules, re.S)
    assert block, "rule plot_figures has no input block"
    assert tuple(re.findall(r"^\s+(\w+)=", block.group(1), re.M)) == TABLES


def caption_users() -> set[str]:
    """Caption names the workflow uses: every registry figure, the literal captions of
    the rules, and the report's static front page (named in common.smk, which the
    Snakefile's `report:` falls back to before a run wrote its own)."""
    used = set(FIGURES)
    for rules in (ROOT / "workflow" / "rules").glob("*.smk"):
        used |= set(re.findall(r'caption="\.\./report/(\w+)\.rst"', rules.read_text()))
        used |= set(re.findall(r'"workflow/report/(\w+)\.rst"', rules.read_text()))
    assert "report: report_front_page()" in (ROOT / "Snakefile").read_text()
    return used


def test_every_figure_has_a_caption_and_every_caption_a_user() -> None:
    files = {p.stem for p in CAPTIONS.glob("*.rst")}
    used = caption_users()
    assert {"table1", "table2", "table3", "table4", "slopes", "gate_table", "workflow"} <= used
    assert not used - files, f"captions missing from workflow/report/: {sorted(used - files)}"
    assert not files - used, f"caption files no rule or figure uses: {sorted(files - used)}"


def test_reading_the_registry_does_not_import_matplotlib() -> None:
    """common.smk reads FIGURES at DAG-parse time; that must stay cheap."""
    code = "import sys, safescale.report.registry; print('matplotlib' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )
    assert out.stdout.strip() == "False"


def test_unknown_figure_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="no figure named 'pie_chart'.*decoupling"):
        figure_spec("pie_chart")


def test_stage_reads_only_the_tables_the_figures_take(tmp_path: Path) -> None:
    """Only labels, metrics and ensembles exist here, so reading any other table would
    fail; a skipped ensembles table (too few models) reads as no ensembles, not an error."""
    questions, records, meta = synthetic_panel(seed=2, n_models=2, n_questions=8)
    tidy = label_predictions(questions, records, meta)
    tidy.to_parquet(tmp_path / "labels.parquet", index=False)
    metrics = compute_metrics(tidy)
    metrics.to_csv(tmp_path / "metrics.csv", index=False)
    pd.DataFrame({"skipped": ["fewer than 3 models"]}).to_csv(tmp_path / "ens.csv", index=False)
    absent = str(tmp_path / "absent.csv")
    outputs = {
        name: str(tmp_path / "figures" / f"{name}.png")
        for name in ("ensembles", "heatmap_accuracy", "lorenz")
    }
    plot_figures(
        labels=str(tmp_path / "labels.parquet"),
        metrics=str(tmp_path / "metrics.csv"),
        ci=absent,
        slopes=absent,
        variance=absent,
        ensembles=str(tmp_path / "ens.csv"),
        gate=absent,
        curves=absent,
        outputs=outputs,
    )
    for path in outputs.values():
        assert mpimg.imread(path).ndim == 3 and Path(path).with_suffix(".svg").exists()
    assert sorted(p.name for p in (tmp_path / "figures").glob("*.png")) == sorted(
        f"{n}.png" for n in outputs
    )
    with pytest.raises(KeyError, match="pie_chart"):
        plot_figures(
            labels=absent,
            metrics=absent,
            ci=absent,
            slopes=absent,
            variance=absent,
            ensembles=absent,
            gate=absent,
            curves=absent,
            outputs={"pie_chart": str(tmp_path / "pie.png")},
        )
