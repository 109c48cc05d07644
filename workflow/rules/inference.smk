# Greedy answer, exact letter probabilities and self-consistency samples per prompt.


rule run_inference:
    input:
        benchmark="results/data/benchmark.jsonl",
        prompts="results/prompts/{model}/{condition}.jsonl",
        model="results/models/{model}.json",
    output:
        predictions="results/predictions/{model}/{condition}.jsonl",
        summary="results/predictions/{model}/{condition}.summary.json",
    log:
        "logs/inference/{model}/{condition}.log",
    benchmark:
        "benchmarks/inference/{model}/{condition}.tsv"
    wildcard_constraints:
        condition="|".join(ANSWERED_ALONE),
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=0,
    params:
        # Rerun triggers: only what changes predictions (threads, timeouts and the
        # like do not); the job reads every setting from the config.
        predicts=prediction_settings(config),
    script:
        "../scripts/run_inference.py"


if RANKED_TOGETHER:

    rule run_inference_ranked:
        input:
            benchmark="results/data/benchmark.jsonl",
            prompts=expand(
                "results/prompts/{{model}}/{condition}.jsonl",
                condition=RANKED_TOGETHER,
            ),
            model="results/models/{model}.json",
        output:
            predictions=expand(
                "results/predictions/{{model}}/{condition}.jsonl",
                condition=RANKED_TOGETHER,
            ),
            summaries=expand(
                "results/predictions/{{model}}/{condition}.summary.json",
                condition=RANKED_TOGETHER,
            ),
        log:
            f"logs/inference/{{model}}/{C.RANKED_EVIDENCE_JOB}.log",
        benchmark:
            f"benchmarks/inference/{{model}}/{C.RANKED_EVIDENCE_JOB}.tsv"
        # the longest jobs start first, so two cores are not left with one long job
        priority: 10
        conda:
            CONDA_ENV
        threads: THREADS
        resources:
            mem_mb=4000,
            runtime=480,
            gpu=0,
        params:
            predicts=prediction_settings(config),
        script:
            "../scripts/run_inference_ranked.py"


rule summarize_parsing:
    input:
        summaries=expand(
            "results/predictions/{model}/{condition}.summary.json",
            model=MODELS,
            condition=CONDITIONS,
        ),
        predictions=prediction_files(),
    output:
        table="results/predictions/parse_summary.csv",
        unparsed="results/predictions/unparsed.csv",
    log:
        "logs/inference/summarize_parsing.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/summarize_parsing.py"


rule judge_predictions:
    input:
        benchmark="results/data/benchmark.jsonl",
        predictions="results/predictions/{model}/{condition}.jsonl",
        judge=f"results/models/{JUDGE}.json" if JUDGE else [],
    output:
        predictions="results/judged/{model}/{condition}.jsonl",
        summary="results/judged/{model}/{condition}.summary.json",
    log:
        "logs/judge/{model}/{condition}.log",
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=0,
    params:
        judge=JUDGE,
        max_tokens=config["inference"]["judge_max_tokens"],
    script:
        "../scripts/judge_predictions.py"
