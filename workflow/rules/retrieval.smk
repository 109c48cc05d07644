# Chunking, BM25 and chromadb indexes, rankings and retrieval quality.


rule chunk_corpus:
    input:
        corpus=config["corpus"]["path"],
    output:
        chunks="results/index/chunks.jsonl",
    log:
        "logs/retrieval/chunk_corpus.log",
    # short jobs that every model-running job waits for: never queue them behind one
    priority: 20
    conda:
        CONDA_ENV
    params:
        fmt=config["corpus"]["format"],
        columns=config["corpus"]["columns"],
        chunk_tokens=config["retrieval"]["chunk_tokens"],
        overlap=config["retrieval"]["chunk_overlap"],
        max_length=config["retrieval"]["embedding_max_length"],
    script:
        "../scripts/chunk_corpus.py"


rule index_bm25:
    input:
        chunks="results/index/chunks.jsonl",
    output:
        index="results/index/bm25.pkl",
    log:
        "logs/retrieval/index_bm25.log",
    # short jobs that every model-running job waits for: never queue them behind one
    priority: 20
    conda:
        CONDA_ENV
    script:
        "../scripts/index_bm25.py"


# One job owns the chromadb path: concurrent writers damage a collection.
rule index_dense:
    input:
        chunks="results/index/chunks.jsonl",
    output:
        index=directory("results/index/chroma"),
    log:
        "logs/retrieval/index_dense.log",
    benchmark:
        "benchmarks/retrieval/index_dense.tsv"
    # short jobs that every model-running job waits for: never queue them behind one
    priority: 20
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        max_length=config["retrieval"]["embedding_max_length"],
        batch_size=config["retrieval"]["embedding_batch_size"],
        hnsw=config["retrieval"]["hnsw"],
    script:
        "../scripts/index_dense.py"


rule retrieve:
    input:
        benchmark="results/data/benchmark.jsonl",
        bm25="results/index/bm25.pkl",
        chroma="results/index/chroma",
    output:
        rankings="results/retrieval/{retriever}.jsonl",
    log:
        "logs/retrieval/retrieve_{retriever}.log",
    # short jobs that every model-running job waits for: never queue them behind one
    priority: 20
    conda:
        CONDA_ENV
    threads: 1
    params:
        rrf_k=config["retrieval"]["rrf_k"],
        depth=RANK_DEPTH,
    script:
        "../scripts/retrieve.py"


rule retrieval_quality:
    input:
        benchmark="results/data/benchmark.jsonl",
        chunks="results/index/chunks.jsonl",
        rankings=expand("results/retrieval/{retriever}.jsonl", retriever=RETRIEVERS),
    output:
        table="results/retrieval/quality.csv",
        figure=report(
            "results/figures/retrieval_quality.png",
            caption="../report/retrieval_quality.rst",
            category="Retrieval",
        ),
    log:
        "logs/retrieval/retrieval_quality.log",
    conda:
        CONDA_ENV
    params:
        gold_map=config["corpus"]["gold_map"],
        retrievers=RETRIEVERS,
    script:
        "../scripts/retrieval_quality.py"
