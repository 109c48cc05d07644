# Labels, metrics with CIs, comparisons, ensembles, worst cases, scaling, safety gate.

ANALYSIS = config["analysis"]


rule label_predictions:
    input:
        benchmark="results/data/benchmark.jsonl",
        predictions=labelled_prediction_files(),
        models=expand("results/models/{model}.json", model=MODELS),
    output:
        parquet="results/labels/labels.parquet",
        csv="results/labels/labels.csv",
    log:
        "logs/analysis/label_predictions.log",
    conda:
        CONDA_ENV
    params:
        threshold=ANALYSIS["overconfidence_threshold"],
    script:
        "../scripts/label_predictions.py"


rule compute_metrics:
    input:
        labels="results/labels/labels.parquet",
    output:
        metrics="results/metrics/metrics.csv",
        ci="results/metrics/metrics_ci.csv",
        paired="results/metrics/paired_comparisons.csv",
        mcnemar="results/metrics/mcnemar.csv",
    log:
        "logs/analysis/compute_metrics.log",
    benchmark:
        "benchmarks/analysis/compute_metrics.tsv"
    conda:
        CONDA_ENV
    params:
        B=ANALYSIS["bootstrap_B"],
        seed=ANALYSIS["bootstrap_seed"],
    script:
        "../scripts/compute_metrics.py"


rule ensembles:
    input:
        labels="results/labels/labels.parquet",
    output:
        table=report(
            "results/ensembles/ensembles.csv",
            caption="../report/table3.rst",
            category="Tables",
        ),
    log:
        "logs/analysis/ensembles.log",
    conda:
        CONDA_ENV
    params:
        size=ANALYSIS["ensemble_size"],
    script:
        "../scripts/ensembles.py"


rule worst_cases:
    input:
        labels="results/labels/labels.parquet",
        benchmark="results/data/benchmark.jsonl",
    output:
        summary="results/worstcase/concentration.json",
        worst=report(
            "results/worstcase/worst_questions.csv",
            caption="../report/table4.rst",
            category="Tables",
        ),
        lorenz="results/worstcase/lorenz.csv",
    log:
        "logs/analysis/worst_cases.log",
    conda:
        CONDA_ENV
    params:
        fraction=ANALYSIS["worst_fraction"],
    script:
        "../scripts/worst_cases.py"


rule case_browser:
    input:
        labels="results/labels/labels.parquet",
        benchmark="results/data/benchmark.jsonl",
        prompts=expand(
            "results/prompts/{model}/{condition}.jsonl",
            model=LARGEST_MODEL,
            condition=CONDITIONS,
        ),
        predictions=labelled_predictions_of(LARGEST_MODEL),
    output:
        table="results/tables/case_browser.csv",
        html=report(
            "results/tables/case_browser.html",
            caption="../report/case_browser.rst",
            category="Cases",
        ),
    log:
        "logs/analysis/case_browser.log",
    conda:
        CONDA_ENV
    params:
        model=LARGEST_MODEL,
        conditions=CONDITIONS,
    script:
        "../scripts/case_browser.py"


rule fit_scaling:
    input:
        labels="results/labels/labels.parquet",
        metrics="results/metrics/metrics.csv",
        gate="results/gate/gate_table.csv",
        models=expand("results/models/{model}.json", model=MODELS),
    output:
        slopes=report(
            "results/scaling/slopes.csv",
            caption="../report/slopes.rst",
            category="Tables",
        ),
        differences="results/scaling/slope_differences.csv",
        bootstrap="results/scaling/slope_differences_bootstrap.csv",
        question="results/scaling/question_models.csv",
        variance="results/scaling/variance_decomposition.csv",
        interaction="results/scaling/interaction.csv",
        joint="results/scaling/slope_differences_joint.csv",
        sensitivity="results/scaling/sensitivity.csv",
    log:
        "logs/analysis/fit_scaling.log",
    conda:
        CONDA_ENV
    params:
        B=ANALYSIS["bootstrap_B"],
        seed=ANALYSIS["bootstrap_seed"],
    script:
        "../scripts/fit_scaling.py"


rule simulate_scaling:
    output:
        slopes="results/scaling/simulated/slopes.csv",
        differences="results/scaling/simulated/slope_differences.csv",
        recovery="results/scaling/simulated/parameter_recovery.csv",
    log:
        "logs/analysis/simulate_scaling.log",
    conda:
        CONDA_ENV
    params:
        seed=ANALYSIS["bootstrap_seed"],
        reps=ANALYSIS["simulation_reps"],
    script:
        "../scripts/simulate_scaling.py"


rule safety_gate:
    input:
        labels="results/labels/labels.parquet",
    output:
        table=report(
            "results/gate/gate_table.csv",
            caption="../report/gate_table.rst",
            category="Tables",
        ),
        curves="results/gate/curves.csv",
        signals="results/gate/signal_contrasts.csv",
        conditions="results/gate/condition_contrasts.csv",
    log:
        "logs/analysis/safety_gate.log",
    conda:
        CONDA_ENV
    params:
        B=ANALYSIS["bootstrap_B"],
        seed=ANALYSIS["bootstrap_seed"],
        target_risk=ANALYSIS["gate_target_risk"],
    script:
        "../scripts/safety_gate.py"
