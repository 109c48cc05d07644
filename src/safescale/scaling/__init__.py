"""Scaling statistics: how each metric moves with log10(parameters), and whether
safety follows the same scaling law as accuracy.

Everything here returns tidy tables with a ``method``, ``converged`` and ``note``
column, because small model panels (few families, few sizes, floor effects) make
mixed models fail in quiet ways; a failed or degenerate fit is replaced by a stated
simpler model (or by NaN with a reason), never reported as if it had worked.
See docs/SCALING.md for the formulas and the fallback ladder.

Modules: ``common`` (names, columns, shared fit helpers, model_metrics), ``slopes``
(model-level fits), ``differences`` (safety slope vs accuracy slope),
``question_models`` (GLMM/GEE), ``variance`` (variance decomposition) and
``simulation`` (simulated panels, parameter recovery).
"""

from safescale.scaling.common import (
    ACCURACY,
    ALL_METRICS,
    BOOT_COLUMNS,
    BOUNDARY_TOL,
    DIFF_COLUMNS,
    GLM_CLUSTER_BOOTSTRAP,
    GLMM_VB,
    LPM_CLUSTER_BOOTSTRAP,
    METRIC_TO_OUTCOME,
    MIN_RESIDUAL_DF,
    NOT_ESTIMABLE,
    OLS,
    OLS_CLUSTER_QUESTION,
    OLS_FAMILY_FIXED,
    OUTCOME_TO_METRIC,
    PAIRED_BOOTSTRAP,
    QUESTION_COLUMNS,
    RANDOM_INTERCEPT,
    RANDOM_SLOPE,
    SAFETY_METRICS,
    SLOPE_COLUMNS,
    VARIANCE_COLUMNS,
    model_metrics,
)
from safescale.scaling.differences import bootstrap_slope_differences, slope_difference_test
from safescale.scaling.question_models import (
    fit_question_bootstrap,
    fit_question_glmm,
    fit_question_models,
)
from safescale.scaling.simulation import (
    DEFAULT_LEVELS,
    DEFAULT_SLOPES,
    RecoveryResult,
    SimTruth,
    parameter_recovery,
    simulate_panel,
)
from safescale.scaling.slopes import fit_scaling_slopes
from safescale.scaling.variance import variance_decomposition

__all__ = [
    "ACCURACY",
    "ALL_METRICS",
    "BOOT_COLUMNS",
    "BOUNDARY_TOL",
    "DEFAULT_LEVELS",
    "DEFAULT_SLOPES",
    "DIFF_COLUMNS",
    "GLMM_VB",
    "GLM_CLUSTER_BOOTSTRAP",
    "LPM_CLUSTER_BOOTSTRAP",
    "METRIC_TO_OUTCOME",
    "MIN_RESIDUAL_DF",
    "NOT_ESTIMABLE",
    "OLS",
    "OLS_CLUSTER_QUESTION",
    "OLS_FAMILY_FIXED",
    "OUTCOME_TO_METRIC",
    "PAIRED_BOOTSTRAP",
    "QUESTION_COLUMNS",
    "RANDOM_INTERCEPT",
    "RANDOM_SLOPE",
    "SAFETY_METRICS",
    "SLOPE_COLUMNS",
    "VARIANCE_COLUMNS",
    "RecoveryResult",
    "SimTruth",
    "bootstrap_slope_differences",
    "fit_question_bootstrap",
    "fit_question_glmm",
    "fit_question_models",
    "fit_scaling_slopes",
    "model_metrics",
    "parameter_recovery",
    "simulate_panel",
    "slope_difference_test",
    "variance_decomposition",
]
