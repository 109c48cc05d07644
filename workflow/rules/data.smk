# Benchmark validation and model weights.


rule prepare_benchmark:
    input:
        source=config["benchmark"]["path"],
    output:
        questions="results/data/benchmark.jsonl",
        summary="results/data/benchmark_summary.json",
    log:
        "logs/data/prepare_benchmark.log",
    localrule: True
    conda:
        CONDA_ENV
    params:
        fmt=config["benchmark"]["format"],
        columns=config["benchmark"]["columns"],
        label_values=config["benchmark"]["label_values"],
        options=config["benchmark"]["options"],
        conditions=CONDITIONS,
        limit=config["benchmark"]["limit"],
        shuffle=config["benchmark"]["shuffle"],
        stratify_by=config["benchmark"]["stratify_by"],
        seed=config["seed"],
    script:
        "../scripts/prepare_benchmark.py"


rule fetch_model_weights:
    output:
        manifest="results/models/{model}.json",
    log:
        "logs/models/{model}.log",
    localrule: True
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        entry=lambda w: REGISTRY_ENTRIES[w.model],
        cache_dir=CACHE_DIR,
    script:
        "../scripts/fetch_model_weights.py"
