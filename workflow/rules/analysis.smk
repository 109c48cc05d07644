# Labels, metrics with CIs, comparisons, ensembles, worst cases, scaling, safety gate, summary.

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


rule fit_scaling:
    input:
        labels="results/labels/labels.parquet",
        metrics="results/metrics/metrics.csv",
        gate="results/gate/gate_table.csv",
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


rule write_summary:
    input:
        metrics="results/metrics/metrics.csv",
        ci="results/metrics/metrics_ci.csv",
        paired="results/metrics/paired_comparisons.csv",
        slopes="results/scaling/slopes.csv",
        differences="results/scaling/slope_differences.csv",
        ensembles="results/ensembles/ensembles.csv",
        worst="results/worstcase/worst_questions.csv",
        concentration="results/worstcase/concentration.json",
        gate="results/gate/gate_table.csv",
        parse="results/predictions/parse_summary.csv",
        sim_slopes="results/scaling/simulated/slopes.csv",
        sim_differences="results/scaling/simulated/slope_differences.csv",
        sim_recovery="results/scaling/simulated/parameter_recovery.csv",
    output:
        summary=report("results/SUMMARY.md", category="Summary"),
        table1=report(
            "results/tables/table1_metrics_ci.csv",
            caption="../report/table1.rst",
            category="Tables",
        ),
        table2=report(
            "results/tables/table2_condition_means.csv",
            caption="../report/table2.rst",
            category="Tables",
        ),
    log:
        "logs/analysis/write_summary.log",
    conda:
        CONDA_ENV
    params:
        config=config,
    script:
        "../scripts/write_summary.py"


rule plot_figures:
    input:
        labels="results/labels/labels.parquet",
        metrics="results/metrics/metrics.csv",
        ci="results/metrics/metrics_ci.csv",
        slopes="results/scaling/slopes.csv",
        variance="results/scaling/variance_decomposition.csv",
        ensembles="results/ensembles/ensembles.csv",
        gate="results/gate/gate_table.csv",
        curves="results/gate/curves.csv",
    output:
        decoupling=report(
            "results/figures/decoupling.png",
            caption="../report/decoupling.rst",
            category="Figures",
        ),
        confidence_by_outcome=report(
            "results/figures/confidence_by_outcome.png",
            caption="../report/confidence_by_outcome.rst",
            category="Figures",
        ),
        reliability=report(
            "results/figures/reliability.png",
            caption="../report/reliability.rst",
            category="Figures",
        ),
        scaling=report(
            "results/figures/scaling.png",
            caption="../report/scaling.rst",
            category="Figures",
        ),
        variance_decomposition=report(
            "results/figures/variance_decomposition.png",
            caption="../report/variance_decomposition.rst",
            category="Figures",
        ),
        heatmap_high_risk=report(
            "results/figures/heatmap_high_risk.png",
            caption="../report/heatmap_high_risk.rst",
            category="Figures",
        ),
        heatmap_accuracy=report(
            "results/figures/heatmap_accuracy.png",
            caption="../report/heatmap_accuracy.rst",
            category="Figures",
        ),
        sc_transitions=report(
            "results/figures/sc_transitions.png",
            caption="../report/sc_transitions.rst",
            category="Figures",
        ),
        ensembles=report(
            "results/figures/ensembles.png",
            caption="../report/ensembles.rst",
            category="Figures",
        ),
        lorenz=report(
            "results/figures/lorenz.png",
            caption="../report/lorenz.rst",
            category="Figures",
        ),
        latency_accuracy=report(
            "results/figures/latency_accuracy.png",
            caption="../report/latency_accuracy.rst",
            category="Figures",
        ),
        risk_coverage=report(
            "results/figures/risk_coverage.png",
            caption="../report/risk_coverage.rst",
            category="Figures",
        ),
        aurc_heatmap=report(
            "results/figures/aurc_heatmap.png",
            caption="../report/aurc_heatmap.rst",
            category="Figures",
        ),
    log:
        "logs/analysis/plot_figures.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/plot_figures.py"
