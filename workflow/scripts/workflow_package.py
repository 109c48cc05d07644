"""Puts the workflow's own package (src/safescale) first on sys.path for a job's script.

Snakemake adds this folder to a script's sys.path, so `import workflow_package` works in
every job, also in a conda environment made by `--sdm conda`, where the package itself
is not installed.
"""

import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)
