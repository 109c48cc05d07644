# The agent's retrieve-and-reason transcripts and the exact prompt of every (model, condition).


rule run_agent:
    input:
        benchmark="results/data/benchmark.jsonl",
        chunks="results/index/chunks.jsonl",
        bm25="results/index/bm25.pkl",
        chroma="results/index/chroma",
        model="results/models/{agent}.json",
    output:
        transcripts="results/agentic/{agent}.jsonl",
    log:
        "logs/agentic/{agent}.log",
    benchmark:
        "benchmarks/agentic/{agent}.tsv"
    # a long job that agentic_rag waits for: start it first
    priority: 15
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=0,
    params:
        retriever=RETRIEVER,
        rrf_k=config["retrieval"]["rrf_k"],
        settings=config["agentic"],
        n_batch=config["inference"]["n_batch"],
        n_gpu_layers=config["inference"]["n_gpu_layers"],
    script:
        "../scripts/run_agent.py"


rule summarize_agent:
    input:
        transcripts=expand("results/agentic/{agent}.jsonl", agent=AGENTS),
    output:
        summary="results/agentic/summary.csv",
    log:
        "logs/agentic/summary.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
    params:
        transcripts_of={m: agent_transcripts(m) for m in MODELS},
    script:
        "../scripts/summarize_agent.py"


rule build_prompts:
    input:
        unpack(prompt_inputs),
    output:
        prompts="results/prompts/{model}/{condition}.jsonl",
    log:
        "logs/prompts/{model}/{condition}.log",
    # short jobs that every model-running job waits for: never queue them behind one
    priority: 20
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
    params:
        top_k=config["retrieval"]["top_k"],
        prompting=config["prompting"],
        greedy_max_tokens=config["decoding"]["greedy_max_tokens"],
    script:
        "../scripts/build_prompts.py"
