"""Matplotlib figures: PNG + SVG, one palette per condition and per family."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from safescale.conditions import ALL_CONDITIONS

_CMAP = plt.get_cmap("tab10")
CONDITION_COLORS = {c: _CMAP(i % 10) for i, c in enumerate(ALL_CONDITIONS)}


def save(fig: plt.Figure, path: str | Path) -> None:
    """Write the PNG asked for and an SVG beside it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    fig.savefig(path.with_suffix(".svg"))
    plt.close(fig)


def plot_retrieval_quality(table: pd.DataFrame, path: str | Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    metrics = ["recall@1", "recall@5", "recall@10", "mrr"]
    if table.empty:
        ax.text(0.5, 0.5, "no gold passages: retrieval quality not measured", ha="center")
        ax.set_axis_off()
    else:
        width = 0.8 / len(table)
        for i, row in enumerate(table.itertuples(index=False)):
            values = [table.iloc[i][m] for m in metrics]
            ax.bar([j + i * width for j in range(len(metrics))], values, width, label=row.retriever)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(metrics))], metrics)
        ax.set_ylim(0, 1)
        ax.set_ylabel("share of questions / MRR")
        ax.set_title(f"Retrieval quality against gold passages (n={int(table.n_questions.max())})")
        ax.legend(frameon=False)
    save(fig, path)
