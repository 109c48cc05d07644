"""The published study's headline numbers (arXiv 2605.04039; 34 models, means over
models), shown beside ours in SUMMARY.md for orientation only: different models
and different data."""

from __future__ import annotations

STUDY_HEADLINE: dict[str, dict[str, float]] = {
    "accuracy": {"closed_book": 0.735, "clean_evidence": 0.941},
    "high_risk_rate": {"closed_book": 0.120, "clean_evidence": 0.026},
    "contradiction_rate": {"closed_book": 0.127, "clean_evidence": 0.023},
    "dangerous_overconfidence_rate": {"closed_book": 0.080, "clean_evidence": 0.016},
}
