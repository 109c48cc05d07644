"""Every figure renders a real PNG + SVG on a realistic panel, a degenerate one
(one model, one condition, NaN metrics, no probabilities, no ensembles) and on
empty tables: a thin panel must give a figure that says why, never an exception.
What each figure draws (points, bars, cell texts, curves) is checked against
values computed here from its input tables, and the palettes against fixed
expectations, so a wrong figure fails a test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib
import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from reference_definitions import synthetic_panel

from safescale.analysis.bootstrap import bootstrap_metrics
from safescale.analysis.ensembles import ensemble_table
from safescale.analysis.gate import gate_curves, gate_table
from safescale.analysis.labeling import PROB_COLUMNS, label_predictions
from safescale.analysis.metrics import METRIC_NAMES, compute_metrics
from safescale.conditions import ALL_CONDITIONS
from safescale.report.figures import (
    accuracy_safety,
    concentration,
    confidence,
    heatmaps,
    style,
)
from safescale.report.figures.retrieval import plot_retrieval_quality
from safescale.report.registry import FIGURE_SPECS
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
        "slopes": fit_scaling_slopes(sim_metrics),
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
        "slopes": fit_scaling_slopes(metrics),
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


FIGURES: dict[str, Callable[[Panel, Path], Figure]] = {
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


# ------------------------------------------------------- what the figures draw


def draw(panels: dict[str, Panel], kind: str, figure: str, tmp_path: Path) -> Figure:
    return FIGURES[figure](panels[kind], tmp_path / f"{figure}.png")


def axes_titled(fig: Figure, title: str) -> Axes:
    matches = [ax for ax in fig.axes if ax.get_title() == title]
    assert len(matches) == 1, f"no single panel titled {title!r}"
    return matches[0]


def scatter_points(ax: Axes) -> list[tuple[float, float]]:
    """Every marker drawn: scatter offsets and the data points of marker-only lines."""
    points = [
        tuple(xy) for c in ax.collections if isinstance(c, PathCollection) for xy in c.get_offsets()
    ]
    points += [
        tuple(xy)
        for line in ax.lines
        if line.get_marker() not in (None, "None", "") and line.get_linestyle() == "None"
        for xy in line.get_xydata()
    ]
    return points


def assert_same_points(
    drawn: list[tuple[float, float]], expected: list[tuple[float, float]]
) -> None:
    assert expected, "the expectation is empty: the test would prove nothing"
    assert len(drawn) == len(expected)
    np.testing.assert_allclose(sorted(drawn), sorted(expected), rtol=1e-9)


def cell_texts(ax: Axes) -> dict[tuple[int, int], str]:
    """Heatmap annotations by (row, column)."""
    return {
        (round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts
    }


def models_by_size(frame: pd.DataFrame) -> list[str]:
    sizes = {str(m): float(p) for m, p in zip(frame["model"], frame["params_b"], strict=True)}
    return sorted(sizes, key=lambda m: (sizes[m], m))


def test_decoupling_plots_the_bootstrap_estimates(panels, tmp_path) -> None:
    ci = panels["realistic"]["metrics_ci"]
    fig = draw(panels, "realistic", "decoupling", tmp_path)
    for ax, metric in zip(
        fig.axes[:2], ("high_risk_rate", "dangerous_overconfidence_rate"), strict=True
    ):
        wide = ci.pivot_table(index=["model", "condition"], columns="metric", values="estimate")
        wide = wide[["accuracy", metric]].dropna()
        assert_same_points(scatter_points(ax), list(wide.itertuples(index=False, name=None)))


def test_scaling_plots_each_cell_at_its_log_size(panels, tmp_path) -> None:
    metrics = panels["realistic"]["scaling_metrics"]
    fig = draw(panels, "realistic", "scaling", tmp_path)
    for metric, title in (("accuracy", "Accuracy"), ("high_risk_rate", "High-risk error rate")):
        expected = [
            (np.log10(p * 1e9), v)
            for p, v in zip(metrics["params_b"], metrics[metric], strict=True)
        ]
        assert_same_points(scatter_points(axes_titled(fig, title)), expected)


def test_heatmap_cells_are_the_metric_values(panels, tmp_path) -> None:
    metrics = panels["realistic"]["metrics"]
    fig = draw(panels, "realistic", "heatmap_high_risk", tmp_path)
    models = models_by_size(metrics)
    conditions = list(CONDITIONS)
    expected = {
        (models.index(m), conditions.index(c)): f"{100 * v:.1f}"
        for m, c, v in zip(
            metrics["model"], metrics["condition"], metrics["high_risk_rate"], strict=True
        )
    }
    assert cell_texts(fig.axes[0]) == expected
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == models


def test_heatmap_shows_not_estimable_cells_as_such(panels, tmp_path) -> None:
    fig = draw(panels, "degenerate", "heatmap_accuracy", tmp_path)
    assert set(cell_texts(fig.axes[0]).values()) == {"n/a"}
    assert "not estimable" in fig.axes[0].get_title()


def test_heatmap_shows_a_skipped_cell_as_skipped(panels, tmp_path) -> None:
    metrics = panels["realistic"]["metrics"].copy()
    metrics["cell_status"] = "ok"
    first = metrics.index[0]
    metrics.loc[first, ["accuracy", "cell_status"]] = [np.nan, "skipped"]
    fig = heatmaps.plot_heatmap(metrics, tmp_path / "h.png", "accuracy")
    model, condition = metrics.loc[first, ["model", "condition"]]
    cell = (models_by_size(metrics).index(model), list(CONDITIONS).index(condition))
    texts = cell_texts(fig.axes[0])
    assert texts[cell] == "skipped"
    assert list(texts.values()).count("skipped") == 1


def test_aurc_heatmap_cells_and_unavailable_signals(panels, tmp_path) -> None:
    gate = panels["realistic"]["gate"]
    rows = gate[(gate["signal"] == "sc_confidence") & (gate["risk_kind"] == "high_risk")]
    fig = draw(panels, "realistic", "aurc_heatmap", tmp_path)
    models = sorted(rows["model"].unique())  # the gate table has no sizes: name order
    conditions = list(CONDITIONS)
    expected = {
        (models.index(m), conditions.index(c)): (
            f"{100 * v:.1f}" if ok and np.isfinite(v) else "n/a"
        )
        for m, c, v, ok in zip(
            rows["model"], rows["condition"], rows["aurc"], rows["available"], strict=True
        )
    }
    assert cell_texts(fig.axes[0]) == expected
    unavailable = rows.assign(available=False)
    gate_off = pd.concat([gate.drop(rows.index), unavailable])
    fig = heatmaps.plot_aurc_heatmap(gate_off, tmp_path / "off.png")
    assert set(cell_texts(fig.axes[0]).values()) == {"n/a"}
    assert "not available" in fig.axes[0].get_title()


def test_variance_bars_are_the_shares(panels, tmp_path) -> None:
    table = panels["realistic"]["variance"]
    fig = draw(panels, "realistic", "variance", tmp_path)
    parts = ("share_condition", "share_family", "share_size", "share_shared", "share_residual")
    expected = [
        float(row[p])
        for _, row in table.iterrows()
        for p in parts
        if p in row and np.isfinite(row[p]) and row[p] != 0
    ]
    heights = [bar.get_height() for bar in fig.axes[0].patches]
    assert expected and heights == pytest.approx(expected)


def test_latency_plots_latency_against_accuracy(panels, tmp_path) -> None:
    metrics = panels["realistic"]["metrics"]
    fig = draw(panels, "realistic", "latency_accuracy", tmp_path)
    expected = list(zip(metrics["mean_greedy_latency_s"], metrics["accuracy"], strict=True))
    assert_same_points(scatter_points(fig.axes[0]), expected)


def outcome_of(row: pd.Series) -> str:
    if row["sc_null"] == 1:
        return "NULL"
    if row["sc_correct"] == 1:
        return "correct"
    return "high-risk" if row["sc_high_risk"] == 1 else "wrong"


def test_confidence_by_outcome_counts_each_outcome(panels, tmp_path) -> None:
    tidy = panels["realistic"]["tidy"]
    fig = draw(panels, "realistic", "confidence_by_outcome", tmp_path)
    for condition in CONDITIONS:
        rows = tidy[(tidy["condition"] == condition) & tidy["sc_confidence"].notna()]
        counts = rows.apply(outcome_of, axis=1).value_counts()
        expected = [f"{o}\nn={counts.get(o, 0)}" for o in ("correct", "wrong", "high-risk", "NULL")]
        ax = axes_titled(fig, condition.replace("_", " "))
        assert [t.get_text() for t in ax.get_xticklabels()] == expected


def test_reliability_bins_are_the_mean_confidences(panels, tmp_path) -> None:
    tidy = panels["realistic"]["tidy"]
    fig = draw(panels, "realistic", "reliability", tmp_path)
    ax = axes_titled(fig, "SC confidence (majority letter)")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    for condition in CONDITIONS:
        rows = tidy[(tidy["condition"] == condition) & tidy["sc_confidence"].notna()]
        conf, hit = rows["sc_confidence"].to_numpy(float), rows["sc_correct"].to_numpy(float)
        bins = np.minimum(np.floor(conf * 10), 9)
        expected = [(conf[bins == k].mean(), hit[bins == k].mean()) for k in np.unique(bins)]
        label = next(lab for lab in labels if lab.startswith(condition.replace("_", " ") + " "))
        assert label.endswith(f"n={len(rows)})")
        line = next(ln for ln in ax.lines if ln.get_label() == label)
        np.testing.assert_allclose(line.get_xydata(), expected)


def test_sc_transitions_bars_count_each_transition(panels, tmp_path) -> None:
    tidy = panels["realistic"]["tidy"]
    fig = draw(panels, "realistic", "sc_transitions", tmp_path)
    ax = fig.axes[0]
    word = {1: "correct", 0: "wrong"}
    names = [
        "→ NULL" if r.sc_null == 1 else f"{word[int(r.greedy_correct)]} → {word[int(r.sc_correct)]}"
        for r in tidy.itertuples()
    ]
    counts = tidy.assign(_t=names).groupby(["condition", "_t"]).size()
    for container in ax.containers:
        widths = [bar.get_width() for bar in container]
        assert widths == [counts.get((c, container.get_label()), 0) for c in CONDITIONS]
    assert len(ax.containers) == 5
    for condition in CONDITIONS:
        rows = tidy[tidy["condition"] == condition]
        net = int(rows["sc_correct"].sum() - rows["greedy_correct"].sum())
        assert f"net {net:+d}" in [t.get_text() for t in ax.texts]


def test_ensembles_plot_each_ensemble_and_the_best_model(panels, tmp_path) -> None:
    ensembles, metrics = panels["realistic"]["ensembles"], panels["realistic"]["metrics"]
    fig = draw(panels, "realistic", "ensembles", tmp_path)
    expected = list(zip(ensembles["best_member_accuracy"], ensembles["accuracy"], strict=True))
    best = metrics.groupby("condition")["accuracy"].max()
    expected += [(v, v) for v in best]
    assert_same_points(scatter_points(fig.axes[0]), expected)


def test_ensembles_without_ensembles_say_so(panels, tmp_path) -> None:
    fig = draw(panels, "degenerate", "ensembles", tmp_path)
    assert all("no ensembles" in " ".join(t.get_text() for t in ax.texts) for ax in fig.axes[:2])


def test_lorenz_curve_and_gini_of_all_cells(panels, tmp_path) -> None:
    tidy = panels["realistic"]["tidy"]
    per_question = tidy.groupby("question_id")["greedy_high_risk"].sum().to_numpy(float)
    values = np.sort(per_question)
    n, mean = len(values), values.mean()
    gini = np.abs(values[:, None] - values[None, :]).sum() / (2 * n * n * mean)
    fig = draw(panels, "realistic", "lorenz", tmp_path)
    line = next(ln for ln in fig.axes[0].lines if ln.get_label().startswith("all cells"))
    assert f"Gini {gini:.2f}" in line.get_label()
    np.testing.assert_allclose(
        line.get_ydata(), np.concatenate([[0], np.cumsum(values)]) / values.sum()
    )


def test_risk_coverage_curves_are_the_gate_curves(panels, tmp_path) -> None:
    curves = panels["realistic"]["curves"]
    rows = curves[(curves["signal"] == "sc_confidence") & (curves["risk_kind"] == "high_risk")]
    fig = draw(panels, "realistic", "risk_coverage", tmp_path)
    for condition in CONDITIONS:
        ax = axes_titled(fig, condition.replace("_", " "))
        drawn = sorted(tuple(ln.get_xydata().ravel()) for ln in ax.lines)
        expected = sorted(
            tuple(g.sort_values("coverage")[["coverage", "risk"]].to_numpy().ravel())
            for _, g in rows[rows["condition"] == condition].groupby("model")
        )
        assert len(drawn) == len(expected) > 0
        for a, b in zip(drawn, expected, strict=True):
            np.testing.assert_allclose(a, b)


def test_retrieval_quality_bars_are_the_table(tmp_path) -> None:
    table = pd.DataFrame(
        {
            "retriever": ["bm25", "dense"],
            "recall@1": [0.3, 0.4],
            "recall@5": [0.6, 0.7],
            "recall@10": [0.7, 0.8],
            "mrr": [0.45, 0.55],
            "n_questions": [40, 40],
        }
    )
    fig = plot_retrieval_quality(table, tmp_path / "rq.png")
    assert_valid_figure(tmp_path / "rq.png")
    heights = [bar.get_height() for bar in fig.axes[0].patches]
    assert heights == [0.3, 0.6, 0.7, 0.45, 0.4, 0.7, 0.8, 0.55]
    fig = plot_retrieval_quality(table.iloc[0:0], tmp_path / "none.png")
    assert "no gold passages" in fig.axes[0].texts[0].get_text()


def test_registry_draws_every_figure_from_its_tables(panels, tmp_path) -> None:
    """Each registry entry takes the right tables in the right order: a swapped or wrong
    table would give a placeholder (a lone note) instead of drawn data."""
    p = panels["realistic"]
    tables = {
        "labels": p["tidy"],
        "metrics": p["metrics"],
        "ci": p["metrics_ci"],
        "slopes": p["slopes"],
        "variance": p["variance"],
        "ensembles": p["ensembles"],
        "gate": p["gate"],
        "curves": p["curves"],
    }
    for spec in FIGURE_SPECS:
        fig = spec.draw(tables, tmp_path / f"{spec.name}.png")
        assert_valid_figure(tmp_path / f"{spec.name}.png")
        assert any(ax.lines or ax.collections or ax.patches or ax.images for ax in fig.axes), (
            spec.name
        )


# ------------------------------------------------------------------ palettes

#: what a fresh interpreter (another hash seed) gives for names outside the fixed lists
_OTHER_PROCESS = """
import json, sys
from safescale.report.figures import style
names = json.loads(sys.argv[1])
print(json.dumps({
    "condition": [list(style.condition_color(n)) for n in names],
    "family": [style.family_color(n) for n in names],
    "marker": [style.family_marker(n) for n in names],
}))
"""
UNKNOWN_NAMES = [f"unknown_{i}" for i in range(8)]


def other_process_styles() -> dict[str, list]:
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", _OTHER_PROCESS, json.dumps(UNKNOWN_NAMES)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=120,
    )
    return json.loads(out.stdout)


def test_condition_colors_are_tab10_in_study_order() -> None:
    tab10 = matplotlib.colormaps["tab10"]
    expected = {c: tab10(i) for i, c in enumerate(ALL_CONDITIONS)}
    assert expected == style.CONDITION_COLORS
    assert {c: style.condition_color(c) for c in ALL_CONDITIONS} == expected


def test_family_palette_is_fixed_for_the_study_families() -> None:
    assert style.family_color("Qwen2.5") == "#1b9e77"
    assert style.family_color("MedGemma") == "#e6ab02"
    assert style.family_color("Llama-3") == style.family_color("Llama-3.x") == "#377eb8"
    assert style.FAMILY_COLORS["Qwen3"] == "#d95f02" and style.FAMILY_MARKERS["Qwen3"] == "s"
    known = ["Qwen2.5", "Qwen3", "Gemma-3", "MedGemma", "Llama-3.x", "gpt-oss", "DeepSeek"]
    assert len({style.FAMILY_COLORS[f] for f in known}) == len(known)


def test_unknown_names_get_the_same_style_in_every_process() -> None:
    other = other_process_styles()
    here_conditions = [list(style.condition_color(n)) for n in UNKNOWN_NAMES]
    assert here_conditions == other["condition"]
    assert [style.FAMILY_COLORS[n] for n in UNKNOWN_NAMES] == other["family"]
    assert [style.FAMILY_MARKERS[n] for n in UNKNOWN_NAMES] == other["marker"]
    light = {tuple(c) for c in matplotlib.colormaps["tab20"].colors[1::2]}
    assert {tuple(c) for c in here_conditions} <= light
    assert not {tuple(c) for c in here_conditions} & set(style.CONDITION_COLORS.values())


def test_family_colors_of_one_figure_are_distinct_and_order_free() -> None:
    fams = [f"fam{i}" for i in range(7)]
    colors = style.family_colors(fams)
    assert len(set(colors.values())) == len(fams)
    assert colors == style.family_colors(reversed(fams))  # depends on the set only
    assert len(set(style.family_markers(fams).values())) == len(fams)
    assert style.family_colors(["Qwen3", *fams])["Qwen3"] == "#d95f02"


def test_save_leaves_no_partial_file_when_drawing_fails(tmp_path: Path) -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])

    def fail_on_svg(target: Path, **options: object) -> None:
        if str(target).endswith(".svg"):
            Path(target).write_text("<svg")  # a half-written file, then the failure
            raise OSError("disk full")
        Figure.savefig(fig, target, **options)

    fig.savefig = fail_on_svg
    with pytest.raises(OSError, match="disk full"):
        style.save(fig, tmp_path / "fig.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png"]
    assert mpimg.imread(tmp_path / "fig.png").ndim == 3
