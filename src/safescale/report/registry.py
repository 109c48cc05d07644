"""The figures of a run, in one list: each name with the function that draws it and the
input tables it takes. The DAG's outputs (rule `plot_figures`) come from `FIGURES`, and
the stage draws each output through `figure_spec(name).draw`, so adding a figure is one
entry here plus its caption, `workflow/report/<name>.rst` (the only place captions live).

Functions are named, not imported, so reading the list at DAG-parse time stays free of
matplotlib."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

#: The stage's input tables (keywords of `stages.report.plot_figures` and inputs of rule
#: `plot_figures`) that a figure can take.
TABLES: tuple[str, ...] = (
    "labels",
    "metrics",
    "ci",
    "slopes",
    "variance",
    "ensembles",
    "gate",
    "curves",
)


@dataclass(frozen=True)
class FigureSpec:
    """One figure: `function` is `module.function` under `safescale.report.figures`, called
    with the `inputs` tables in order, then the output path, then `options`."""

    name: str
    function: str
    inputs: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)

    def plotter(self) -> Any:
        module, function = self.function.rsplit(".", 1)
        return getattr(importlib.import_module(f"safescale.report.figures.{module}"), function)

    def draw(self, tables: Mapping[str, pd.DataFrame], path: str | Path) -> Figure:
        return self.plotter()(*(tables[t] for t in self.inputs), path, **self.options)


FIGURE_SPECS: tuple[FigureSpec, ...] = (
    FigureSpec("decoupling", "accuracy_safety.plot_decoupling", ("ci",)),
    FigureSpec("confidence_by_outcome", "confidence.plot_confidence_by_outcome", ("labels",)),
    FigureSpec("reliability", "confidence.plot_reliability", ("labels",)),
    FigureSpec("scaling", "accuracy_safety.plot_scaling", ("metrics", "slopes")),
    FigureSpec(
        "variance_decomposition", "accuracy_safety.plot_variance_decomposition", ("variance",)
    ),
    FigureSpec(
        "heatmap_high_risk", "heatmaps.plot_heatmap", ("metrics",), {"metric": "high_risk_rate"}
    ),
    FigureSpec("heatmap_accuracy", "heatmaps.plot_heatmap", ("metrics",), {"metric": "accuracy"}),
    FigureSpec("sc_transitions", "confidence.plot_sc_transitions", ("labels",)),
    FigureSpec("ensembles", "concentration.plot_ensembles", ("ensembles", "metrics")),
    FigureSpec("lorenz", "concentration.plot_lorenz", ("labels",)),
    FigureSpec("latency_accuracy", "accuracy_safety.plot_latency_accuracy", ("metrics",)),
    FigureSpec("risk_coverage", "confidence.plot_risk_coverage", ("curves",)),
    FigureSpec("aurc_heatmap", "heatmaps.plot_aurc_heatmap", ("gate",)),
)

FIGURES: tuple[str, ...] = tuple(spec.name for spec in FIGURE_SPECS)


def figure_spec(name: str) -> FigureSpec:
    for spec in FIGURE_SPECS:
        if spec.name == name:
            return spec
    raise KeyError(f"no figure named {name!r} in the report registry; known: {', '.join(FIGURES)}")
