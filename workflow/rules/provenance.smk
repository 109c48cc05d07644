# What produced these results: config, package versions, llama.cpp build, model hashes, git commit.


rule provenance:
    input:
        models=expand("results/models/{model}.json", model=ALL_MODELS),
        predictions=prediction_files(),
    output:
        manifest="results/provenance/manifest.json",
    log:
        "logs/provenance.log",
    localrule: True
    conda:
        CONDA_ENV
    params:
        config=config,
    script:
        "../scripts/provenance.py"
