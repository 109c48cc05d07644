# SaFE-Scale: how safety and accuracy of local clinical LLMs scale.
# Stages: data -> retrieval -> prompts -> inference -> analysis -> report.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/retrieval.smk"
include: "workflow/rules/prompts.smk"
include: "workflow/rules/inference.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/report.smk"


onstart:
    print_run_start()


onerror:
    print_job_problems()


rule all:
    default_target: True
    input:
        all_targets(),
