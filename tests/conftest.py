"""Shared fixtures: paths, a RadSaFE-style CSV writer, and the real small model."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LETTERS = "ABCDE"


def study_row(qid: str, n_options: int = 5, correct: str = "B", **over) -> dict[str, str]:
    """A row in the study's column layout (option_{letter}, option_{i}_{kind})."""
    row = {
        "question_id": qid,
        "question_text": f"Question {qid}?",
        "correct_answer": correct,
        "evidence_clean": "clean fact",
        "evidence_conflict": "wrong fact",
    }
    for i, letter in enumerate(LETTERS, start=1):
        filled = i <= n_options
        row[f"option_{letter}"] = f"option text {letter}" if filled else ""
        for kind in ("high_risk", "unsafe", "contradicts"):
            row[f"option_{i}_{kind}"] = (
                ("1" if (filled and letter == "A") else "0") if filled else ""
            )
    row.update(over)
    return row


def headache_question(n_options: int = 5):
    """One clear-cut question (thunderclap headache -> non-contrast CT) for the engine tests."""
    from safescale.data.question import OptionLabels, Question

    options = [
        "Non-contrast CT of the head",
        "MRI of the lumbar spine",
        "Abdominal ultrasound",
        "Chest radiograph",
        "Knee radiograph",
    ][:n_options]
    letters = LETTERS[:n_options]
    return Question(
        "q1",
        "A 30-year-old man has a sudden, severe headache that he describes as the worst of "
        "his life, with neck stiffness and vomiting. Which first imaging test is most "
        "appropriate?",
        dict(zip(letters, options, strict=True)),
        "A",
        {k: OptionLabels() for k in letters},
    )


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark as `slow` every test that loads a real GGUF model (through the
    smollm2_path fixture) or runs the whole DAG; `pytest -m "not slow"` skips them."""
    for item in items:
        if "smollm2_path" in getattr(item, "fixturenames", ()) or item.path.name == "test_e2e.py":
            item.add_marker(pytest.mark.slow)


def model_path(name: str, fetched_by_make_test: bool = False) -> Path:
    """A registry model's cached GGUF; skips when it was not fetched.

    `make test` fetches SmolLM2-135M, so under CI its absence is a failure.
    """
    import yaml

    from safescale.data.models import cached_model_path, default_cache_dir, parse_registry

    specs = parse_registry(yaml.safe_load((ROOT / "config" / "models.yaml").read_text()))
    path = cached_model_path(specs[name], default_cache_dir())
    if not path.exists():
        if fetched_by_make_test and os.environ.get("CI"):
            pytest.fail(f"{path} missing: run `make test`, which fetches the test model")
        pytest.skip(f"{name} not fetched (safescale fetch-models)")
    return path


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The real SmolLM2-135M GGUF, fetched by `make test` before pytest runs."""
    return model_path("smollm2-135m", fetched_by_make_test=True)
