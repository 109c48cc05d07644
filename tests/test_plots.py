"""Every figure renders a real PNG + SVG on a realistic panel, a degenerate one
(one model, one condition, NaN metrics, no probabilities, no ensembles) and on
empty tables: a thin panel must give a figure that says why, never an exception."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from reference_definitions import synthetic_panel

from safescale.analysis.bootstrap import bootstrap_metrics
from safescale.analysis.ensembles import ensemble_table
from safescale.analysis.gate import gate_curves, gate_table
from safescale.analysis.labeling import PROB_COLUMNS, label_predictions
from safescale.analysis.metrics import METRIC_NAMES, compute_metrics
from safescale.report.figures import (
    accuracy_safety,
    concentration,
    confidence,
    heatmaps,
    style,
)
from safescale.scaling import (
    fit_scaling_slopes,
    model_metrics,
    simulate_panel,
    variance_decomposition,
)

Panel = dict[str, pd.DataFrame]
CONDITIONS = ("closed_book", "clean_evidence", "standard_rag")
FAMILIES = ("Qwen3", "Gemma-3")


def realistic_panel() -> Panel:
    questions, records, meta = synthetic_panel(
        seed=3, n_models=4, conditions=CONDITIONS, n_questions=40
    )
    meta = {m: {**v, "family": FAMILIES[i % 2]} for i, (m, v) in enumerate(meta.items())}
    tidy = label_predictions(questions, records, meta)
    metrics = compute_metrics(tidy)
    sim, _ = simulate_panel(n_models=12, n_families=3, n_questions=40, seed=1)
    sim_metrics = model_metrics(sim)
    return {
        "tidy": tidy,
        "metrics": metrics,
        "metrics_ci": bootstrap_metrics(tidy, B=50),
        "scaling_metrics": sim_metrics,
        "slopes": fit_scaling_slopes(sim_metrics, tidy=sim),
        "variance": variance_decomposition(sim_metrics, include_size=True),
        "gate": gate_table(tidy, B=20),
        "curves": gate_curves(tidy),
        "ensembles": ensemble_table(tidy),
    }


def degenerate_panel() -> Panel:
    questions, records, meta = synthetic_panel(
        seed=5, n_models=1, conditions=("closed_book",), n_questions=6
    )
    tidy = label_predictions(questions, records, meta)
    tidy[list(PROB_COLUMNS)] = np.nan  # server backend: no exact probabilities
    tidy["prob_letter"] = pd.Series([None] * len(tidy), dtype=tidy["prob_letter"].dtype)
    tidy.loc[tidy.index[:3], "sc_confidence"] = np.nan
    metrics = compute_metrics(tidy)
    nan_cols = [m for m in METRIC_NAMES if m not in ("n_questions", "n_error_records")]
    metrics[nan_cols] = np.nan
    metrics_ci = bootstrap_metrics(tidy, B=10)
    metrics_ci[["estimate", "ci_low", "ci_high"]] = np.nan
    return {
        "tidy": tidy,
        "metrics": metrics,
        "metrics_ci": metrics_ci,
        "scaling_metrics": metrics,
        "slopes": fit_scaling_slopes(metrics, tidy=tidy),
        "variance": variance_decomposition(metrics),
        "gate": gate_table(tidy, B=0),
        "curves": gate_curves(tidy).iloc[0:0],
        "ensembles": ensemble_table(tidy),
    }


def empty_panel() -> Panel:
    """Tables with no rows and no columns, as a stage with nothing to report writes them."""
    return {key: pd.DataFrame() for key in realistic_keys()}


def realistic_keys() -> tuple[str, ...]:
    return (
        "tidy",
        "metrics",
        "metrics_ci",
        "scaling_metrics",
        "slopes",
        "variance",
        "gate",
        "curves",
        "ensembles",
    )


FIGURES: dict[str, Callable[[Panel, Path], None]] = {
    "decoupling": lambda p, out: accuracy_safety.plot_decoupling(p["metrics_ci"], out),
    "decoupling_no_ci": lambda p, out: accuracy_safety.plot_decoupling(p["metrics"], out),
    "confidence_by_outcome": lambda p, out: confidence.plot_confidence_by_outcome(p["tidy"], out),
    "reliability": lambda p, out: confidence.plot_reliability(p["tidy"], out),
    "scaling": lambda p, out: accuracy_safety.plot_scaling(p["scaling_metrics"], p["slopes"], out),
    "variance": lambda p, out: accuracy_safety.plot_variance_decomposition(p["variance"], out),
    "heatmap_high_risk": lambda p, out: heatmaps.plot_heatmap(p["metrics"], out),
    "heatmap_accuracy": lambda p, out: heatmaps.plot_heatmap(p["metrics"], out, metric="accuracy"),
    "sc_transitions": lambda p, out: confidence.plot_sc_transitions(p["tidy"], out),
    "ensembles": lambda p, out: concentration.plot_ensembles(p["ensembles"], p["metrics"], out),
    "lorenz": lambda p, out: concentration.plot_lorenz(p["tidy"], out),
    "latency_accuracy": lambda p, out: accuracy_safety.plot_latency_accuracy(p["metrics"], out),
    "risk_coverage": lambda p, out: confidence.plot_risk_coverage(p["curves"], out),
    "risk_coverage_prob": lambda p, out: confidence.plot_risk_coverage(
        p["curves"], out, signal="prob_chosen", risk="any_error"
    ),
    "aurc_heatmap": lambda p, out: heatmaps.plot_aurc_heatmap(p["gate"], out),
}
BUILDERS: dict[str, Callable[[], Panel]] = {
    "realistic": realistic_panel,
    "degenerate": degenerate_panel,
    "empty": empty_panel,
}


@pytest.fixture(scope="module")
def panels() -> dict[str, Panel]:
    return {name: build() for name, build in BUILDERS.items()}


def assert_valid_figure(png: Path) -> None:
    assert png.stat().st_size > 1024, f"{png.name} is suspiciously small"
    image = mpimg.imread(png)
    assert image.ndim == 3 and image.shape[0] > 0 and image.shape[1] > 0
    assert np.ptp(image[..., :3]) > 0, "blank image"
    svg = png.with_suffix(".svg")
    assert svg.stat().st_size > 0
    assert "<svg" in svg.read_text(encoding="utf-8")[:2000]


@pytest.mark.parametrize("kind", list(BUILDERS))
@pytest.mark.parametrize("figure", list(FIGURES))
def test_figure_renders(panels: dict[str, Panel], kind: str, figure: str, tmp_path: Path) -> None:
    png = tmp_path / f"{figure}.png"
    FIGURES[figure](panels[kind], png)
    assert_valid_figure(png)


def test_degenerate_panel_is_degenerate(panels: dict[str, Panel]) -> None:
    """Guard the fixture: it must really exercise the thin-panel paths."""
    p = panels["degenerate"]
    assert p["tidy"]["model"].nunique() == 1 and p["tidy"]["condition"].nunique() == 1
    assert p["metrics"]["accuracy"].isna().all()
    assert p["ensembles"].empty and p["curves"].empty
    assert (p["slopes"]["method"] == "not_estimable").all()


def test_family_palette_is_stable_and_distinct() -> None:
    assert style.FAMILY_COLORS["some-new-family"] == style.family_color("some-new-family")
    assert style.FAMILY_MARKERS["x"] == style.family_marker("x")
    known = ["Qwen2.5", "Qwen3", "Gemma-3", "MedGemma", "Llama-3.x", "gpt-oss", "DeepSeek"]
    assert len({style.FAMILY_COLORS[f] for f in known}) == len(known)
    fams = [f"fam{i}" for i in range(7)]
    colors = style.family_colors(fams)
    assert len(set(colors.values())) == len(fams)
    assert colors == style.family_colors(reversed(fams))  # depends on the set only
    assert len(set(style.family_markers(fams).values())) == len(fams)
    assert style.family_colors(["Qwen3", *fams])["Qwen3"] == style.family_color("Qwen3")


def test_condition_colors_match_figures_module() -> None:
    for condition, color in style.CONDITION_COLORS.items():
        assert style.condition_color(condition) == color
    assert style.condition_color("unknown_condition") == style.condition_color("unknown_condition")
