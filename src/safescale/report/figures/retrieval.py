"""Retrieval quality against gold passages, drawn by the retrieval stage (its own rule,
so not in the report registry)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from safescale.report.figures.style import save


def plot_retrieval_quality(table: pd.DataFrame, path: str | Path) -> Figure:
    """Recall@1/5/10 and MRR, one bar group per retriever; a note where there is no gold."""
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
    return save(fig, path)
