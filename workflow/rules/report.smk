# Figures, SUMMARY.md with its tables, and provenance (config, packages, llama.cpp build,
# model hashes, git commit).


rule write_summary:
    input:
        unpack(agentic_summary_input),
        benchmark="results/data/benchmark.jsonl",
        metrics="results/metrics/metrics.csv",
        ci="results/metrics/metrics_ci.csv",
        paired="results/metrics/paired_comparisons.csv",
        mcnemar="results/metrics/mcnemar.csv",
        labels="results/labels/labels.parquet",
        slopes="results/scaling/slopes.csv",
        differences="results/scaling/slope_differences.csv",
        interaction="results/scaling/interaction.csv",
        joint="results/scaling/slope_differences_joint.csv",
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
        intro=REPORT_INTRO,
    log:
        "logs/report/write_summary.log",
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
        **{
            name: report(
                f"results/figures/{name}.png",
                caption=f"../report/{name}.rst",
                category="Figures",
            )
            for name in FIGURES
        },
    log:
        "logs/report/plot_figures.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/plot_figures.py"


rule provenance:
    input:
        models=expand("results/models/{model}.json", model=ALL_MODELS),
        predictions=prediction_files(),
    output:
        manifest="results/provenance/manifest.json",
    log:
        "logs/report/provenance.log",
    localrule: True
    conda:
        CONDA_ENV
    params:
        # The config as written: its hash must not change with the checkout's location.
        config=CONFIG_AS_WRITTEN,
        workflow_dir=workflow.basedir,
    script:
        "../scripts/provenance.py"
