"""What every Snakemake script does first: log to the rule's log, respect its threads."""

from __future__ import annotations

import os
import sys
from typing import Any


def start(smk: Any) -> None:
    """Send stdout/stderr to the job log, cap BLAS/ONNX threads at the job's threads, and
    keep onnxruntime from contacting its telemetry host (see retrieval/embedder.py)."""
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(smk.threads)
    if smk.log:
        handle = open(smk.log[0], "w", buffering=1)  # noqa: SIM115 - lives as long as the job
        sys.stdout = sys.stderr = handle
