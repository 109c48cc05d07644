# Config validation, the model registry, wildcard constraints and shared input functions.
import copy
import re
import sys
import time
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The workflow's own package (src/safescale) serves this process also where no
# `pip install -e .` has run; jobs find it through workflow/scripts/workflow_package.py.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from safescale import conditions as C
from safescale.config import cache_dir as _cache_dir
from safescale.config import planning_agent
from safescale.config import prediction_settings
from safescale.config import selected_models
from safescale.data.check import check_mapping, problems_in_logs, run_start_lines
from safescale.data.models import largest_model
from safescale.errors import InputError
from safescale.report.registry import FIGURES

validate(config, "../schemas/config.schema.yaml")
# Before any path is resolved: what provenance records and hashes.
CONFIG_AS_WRITTEN = copy.deepcopy(config)


def _sorted_keys(value):
    """Nested dicts in key order: a param's value must not depend on the order in which
    a config file happens to list its keys (Snakemake compares params as written)."""
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    return value


for _key in list(config):
    config[_key] = _sorted_keys(config[_key])

try:  # a pattern typo fails here, before any job runs
    check_mapping(config["benchmark"])
except InputError as _exc:
    raise WorkflowError(f"the benchmark settings cannot work:\n{_exc}") from None


def resolve(path):
    """Config paths are relative to the working directory, else to the workflow's root."""
    if path is None or Path(path).is_absolute() or Path(path).exists():
        return path
    return str(Path(workflow.basedir) / path)


for _section, _key in [
    ("benchmark", "path"),
    ("corpus", "path"),
    ("corpus", "gold_map"),
]:
    config[_section][_key] = resolve(config[_section][_key])
config["models_registry"] = resolve(config["models_registry"])

MODEL_SPECS = {spec.name: spec for spec in selected_models(config)}
with open(config["models_registry"]) as _fh:
    REGISTRY_ENTRIES = {entry["name"]: entry for entry in yaml.safe_load(_fh)}
MODELS = list(config["models"])
# The model the case browser and the summary's power statement are about.
LARGEST_MODEL = largest_model({m: MODEL_SPECS[m].params_b for m in MODELS})
# Every model whose weights the run needs (the agent and judge models included).
ALL_MODELS = list(MODEL_SPECS)
CONDITIONS = list(config["conditions"])
# Ranked-evidence conditions one job per model answers together (run_inference_ranked);
# every other condition has a job of its own (run_inference).
RANKED_TOGETHER = C.answered_together(CONDITIONS)
ANSWERED_ALONE = [c for c in C.ALL_CONDITIONS if c not in RANKED_TOGETHER]
RETRIEVER = config["retrieval"]["retriever"]
RETRIEVERS = sorted(set(config["retrieval"]["evaluate"]) | {RETRIEVER})
CACHE_DIR = str(_cache_dir(config))
THREADS = config["inference"]["threads"]
# One software environment for every rule (the same pins as requirements/lock.txt).
CONDA_ENV = "../../environment.yml"
# Rankings deep enough for top-10, padded top-1 and the longest max-context block.
RANK_DEPTH = 200


wildcard_constraints:
    model="|".join(map(re.escape, MODEL_SPECS)),
    agent="|".join(map(re.escape, MODEL_SPECS)),
    condition="|".join(C.ALL_CONDITIONS),
    retriever="bm25|dense|hybrid",


def needs_retrieval(condition):
    return condition not in (C.CLOSED_BOOK, *C.EVIDENCE_FIELD)


def prompt_inputs(wildcards):
    inputs = {
        "benchmark": "results/data/benchmark.jsonl",
        "chunks": "results/index/chunks.jsonl",
        "model": f"results/models/{wildcards.model}.json",
    }
    if needs_retrieval(wildcards.condition):
        inputs["rankings"] = f"results/retrieval/{RETRIEVER}.jsonl"
    if wildcards.condition == C.AGENTIC_RAG:
        inputs["agentic"] = agent_transcripts(wildcards.model)
    return inputs


AGENT = planning_agent(config, MODEL_SPECS)


def agent_of(model):
    """The model that plans the agentic searches for `model` (itself unless one is set)."""
    return AGENT or model


def agent_transcripts(model):
    """Transcripts are named by their agent: one run_agent job per agent, shared by
    every model it plans for."""
    return f"results/agentic/{agent_of(model)}.jsonl"


AGENTS = sorted({agent_of(m) for m in MODELS})


JUDGE = config["inference"]["judge_model"]


def labelled_prediction_files():
    """What the analysis reads: judged copies when a judge model is set."""
    stage = "judged" if JUDGE else "predictions"
    return expand(
        f"results/{stage}/{{model}}/{{condition}}.jsonl",
        model=MODELS,
        condition=CONDITIONS,
    )


def labelled_predictions_of(model):
    """One model's labelled prediction files, one per condition in config order."""
    stage = "judged" if JUDGE else "predictions"
    return [f"results/{stage}/{model}/{condition}.jsonl" for condition in CONDITIONS]


def prediction_files():
    return expand(
        "results/predictions/{model}/{condition}.jsonl",
        model=MODELS,
        condition=CONDITIONS,
    )


def all_targets():
    return [
        "results/data/benchmark_summary.json",
        "results/retrieval/quality.csv",
        "results/figures/retrieval_quality.png",
        *prediction_files(),
        "results/predictions/parse_summary.csv",
        *agent_targets(),
        *analysis_targets(),
        "results/provenance/manifest.json",
    ]


def agent_targets():
    """The agent's per-model summary, where agentic_rag is run."""
    return ["results/agentic/summary.csv"] if C.AGENTIC_RAG in CONDITIONS else []


def analysis_targets():
    return [
        "results/labels/labels.parquet",
        "results/metrics/metrics.csv",
        "results/ensembles/ensembles.csv",
        "results/worstcase/worst_questions.csv",
        "results/scaling/slopes.csv",
        "results/gate/gate_table.csv",
        "results/SUMMARY.md",
        "results/tables/case_browser.html",
        *expand("results/figures/{name}.png", name=FIGURES),
    ]


# The report's front page: what the run can and cannot show, written by write_summary.
REPORT_INTRO = "results/report/intro.rst"
AGENTIC_SUMMARY = "results/agentic/summary.csv"


def report_front_page():
    """The run's own opening once write_summary wrote it (a report made after the run);
    the static description before that."""
    intro = Path(REPORT_INTRO).resolve()
    return str(intro) if intro.exists() else "workflow/report/workflow.rst"


def agentic_summary_input(wildcards):
    """The agentic fallback summary, when a rule of this workflow writes it."""
    written = any(AGENTIC_SUMMARY in map(str, rule.output) for rule in workflow.rules)
    return {"agentic_summary": AGENTIC_SUMMARY} if written else {}


RUN_STARTED = time.time()


def print_run_start():
    """The benchmark slice (N of M questions, order) and the settings it inherited."""
    user_files = [str(f) for f in workflow.overwrite_configfiles]
    for line in run_start_lines(config, user_files):
        print(line, file=sys.stderr)


def print_job_problems():
    """The problem list of each job that failed on bad input, where the user is looking."""
    lines = problems_in_logs(Path("logs"), RUN_STARTED)
    if lines:
        print(
            "\n".join(["", "Problems reported by the failed jobs:", *lines]),
            file=sys.stderr,
        )
