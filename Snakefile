# SaFE-Scale: how safety and accuracy of local clinical LLMs scale.
# Stages: data -> retrieval -> prompts -> inference -> analysis -> report.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/retrieval.smk"
include: "workflow/rules/prompts.smk"
include: "workflow/rules/inference.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/report.smk"


# After a run, the report opens with what the run can and cannot show.
report: report_front_page()


onstart:
    print_run_start()


onerror:
    print_job_problems()


rule all:
    default_target: True
    input:
        all_targets(),
