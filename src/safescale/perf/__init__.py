"""Speed benchmark of the inference engine on a fixed slice of real prompts.

For each model it measures, in one process and one run (so that the ratios
compare numbers taken under the same machine load):

(a) raw llama.cpp throughput: prompt tokens/s (one evaluation of a ~500-token
    prompt) and decode tokens/s (single-token evaluations);
(b) end-to-end seconds per question and condition of `LlamaEngine.answer`
    (greedy + letter probabilities + n self-consistency samples);
(c) our self-consistency cost (shared prompt evaluation + the sampling part of
    `answer`) against the strong baseline a user would pick: n `create_completion`
    calls reusing llama-cpp-python's cached prompt, with and without an early stop
    (and, with --naive, n cache-free calls that each re-read the prompt);
(d) end-to-end time against a lower bound: the raw llama.cpp time of the same
    prompt tokens + evaluated decode tokens at the raw single-token time, timed
    next to each answer (and, for reference, the same counts over (a)'s rates);
(e) when --results holds a finished run: its inference jobs' time against its token
    bound (unique prompt tokens / peak prompt tok/s + decode steps / peak decode
    tok/s, the peaks measured here at the config's inference.threads).

Every timing is kept on the wall clock and on process CPU time. See
docs/BENCHMARKS.md for the figures and how to read them.

Modules: `inputs` (questions, prompts, settings), `timing` (the two clocks),
`measure` (the per-prompt measurements), `strong` (the strong baseline), `runbound`
(the run's token bound), `report` (the tables), `outputs` (CSV and figure), `suite`
(the run over models), `__main__` (the command line).

Usage: python -m safescale.perf --config config/config.yaml [--questions N]
       [--models m1,m2] [--conditions c1,c2] [--results results] [--naive]
       [--out results/bench/bench.json]
"""

from safescale.perf.inputs import BenchSettings
from safescale.perf.report import format_report
from safescale.perf.suite import run

__all__ = ["BenchSettings", "format_report", "run"]
