"""SaFE-Scale: how safety and accuracy of local clinical LLMs scale.

The public API for notebooks (the workflow itself calls `safescale.stages`):

    import safescale
    questions = safescale.load_benchmark("my.csv", safescale.ColumnMapping.from_config({...}))
    tidy = safescale.label_predictions(questions, records, model_meta)
    metrics = safescale.compute_metrics(tidy)
    slopes = safescale.fit_scaling_slopes(metrics)

Names are imported on first use, so `import safescale` stays cheap for every job.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "ColumnMapping": "safescale.data.benchmark",
    "load_benchmark": "safescale.data.benchmark",
    "read_canonical": "safescale.data.benchmark",
    "Question": "safescale.data.question",
    "load_corpus": "safescale.data.corpus",
    "label_predictions": "safescale.analysis.labeling",
    "read_tidy": "safescale.analysis.labeling",
    "majority_vote": "safescale.analysis.labeling",
    "sc_confidence": "safescale.analysis.labeling",
    "compute_metrics": "safescale.analysis.metrics",
    "HEADLINE_METRICS": "safescale.analysis.metrics",
    "bootstrap_metrics": "safescale.analysis.bootstrap",
    "paired_differences": "safescale.analysis.bootstrap",
    "default_contrasts": "safescale.analysis.bootstrap",
    "ensemble_table": "safescale.analysis.ensembles",
    "concentration_summary": "safescale.analysis.worstcase",
    "gate_table": "safescale.analysis.gate",
    "fit_scaling_slopes": "safescale.scaling",
    "slope_difference_test": "safescale.scaling",
    "fit_question_models": "safescale.scaling",
    "variance_decomposition": "safescale.scaling",
    "simulate_panel": "safescale.scaling",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from safescale.analysis.bootstrap import (
        bootstrap_metrics,
        default_contrasts,
        paired_differences,
    )
    from safescale.analysis.ensembles import ensemble_table
    from safescale.analysis.gate import gate_table
    from safescale.analysis.labeling import (
        label_predictions,
        majority_vote,
        read_tidy,
        sc_confidence,
    )
    from safescale.analysis.metrics import HEADLINE_METRICS, compute_metrics
    from safescale.analysis.worstcase import concentration_summary
    from safescale.data.benchmark import ColumnMapping, load_benchmark, read_canonical
    from safescale.data.corpus import load_corpus
    from safescale.data.question import Question
    from safescale.scaling import (
        fit_question_models,
        fit_scaling_slopes,
        simulate_panel,
        slope_difference_test,
        variance_decomposition,
    )


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'safescale' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return [*globals(), *__all__]
