"""One prediction record per (model, condition, question), in docs/FORMATS.md's shape."""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import traceback
from collections.abc import Sequence

from safescale.data.question import Question
from safescale.inference.llama_engine import Decoding, LlamaEngine, head_length
from safescale.inference.parsing import letter_is_final, parse_letter
from safescale.inference.sampling import derive_seed
from safescale.prompting.templates import evidence_entry_offsets

# Below this median raw letter mass a cell's letter probabilities describe a
# small corner of what the model would say: probability-based confidence
# (prob_* columns and metrics) is then marked unreliable.
RELIABLE_LETTER_MASS = 0.5


# How the engine splits a prompt for evaluation (LlamaEngine.prime); part of the
# run key because the split changes logits in the last bits.
EVALUATION_SPLIT = "template-head+evidence-entries"


def run_key(prompts: Sequence[dict], model_sha: str, decoding: Decoding, seed: int) -> str:
    """Identifies a prediction run; a partial file resumes only under the same key."""
    blob = json.dumps(
        [prompts, model_sha, repr(decoding), seed, EVALUATION_SPLIT], sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def sample_seeds(seed: int, model: str, condition: str, qid: str, n: int) -> list[int]:
    return [derive_seed(seed, model, condition, qid, i) for i in range(n)]


def _base(prompt: dict) -> dict:
    return {
        "model": prompt["model"],
        "condition": prompt["condition"],
        "question_id": prompt["question_id"],
        "status": prompt["status"],
        "error": prompt.get("reason"),
        "greedy": None,
        "samples": [],
        "letter_probs": None,
        "letter_mass": None,
        "seed": None,
        "prompt_tokens": prompt.get("n_prompt_tokens", 0),
    }


def new_record(
    prompt: dict, q: Question, decoding: Decoding, seed: int
) -> tuple[dict, list[int] | None]:
    """A record with the prompt's fields, and the sample seeds (None: prompt skipped)."""
    rec = _base(prompt)
    if prompt["status"] != "ok":
        return rec, None  # skipped condition: kept and counted downstream
    seeds = sample_seeds(
        seed, prompt["model"], prompt["condition"], q.question_id, decoding.n_samples
    )
    rec["seed"] = seeds[0] if seeds else None
    return rec, seeds


def fill_answers(
    rec: dict,
    q: Question,
    greedy: tuple[str, int | None, float],
    samples: Sequence[tuple[str, int | None]],
    letter_probs: dict[str, float] | None,
    letter_mass: float | None,
) -> None:
    """Parsed greedy answer (raw, n_tokens, latency_s), samples (raw, n_tokens), letter probs."""
    raw, n_tokens, latency_s = greedy
    rec.update(
        greedy={
            "raw": raw,
            "letter": parse_letter(raw, q.options),
            "n_tokens": n_tokens,
            "latency_s": round(latency_s, 4),
        },
        samples=[
            {"raw": text, "letter": parse_letter(text, q.options), "n_tokens": n}
            for text, n in samples
        ],
        letter_probs=None
        if letter_probs is None
        else {k: round(v, 8) for k, v in letter_probs.items()},
        letter_mass=None if letter_mass is None else round(letter_mass, 8),
    )


def predict_llama(
    engine: LlamaEngine,
    q: Question,
    prompt: dict,
    decoding: Decoding,
    seed: int,
    on_error: str = "record",
    head: list[int] | None = None,
) -> dict:
    """`head`: the tokens of the job's template head, evaluated once and reused
    (LlamaEngine.prime); None evaluates every prompt whole. A prompt is also split
    where its numbered evidence entries start, so prompts of one question whose
    evidence shares its first entries share their evaluation (prompt_splits)."""
    rec, seeds = new_record(prompt, q, decoding, seed)
    if seeds is None:
        return rec
    try:
        tokens = engine.tokenize(prompt["prompt"])
        splits = prompt_splits(engine, prompt["prompt"], tokens, q, head) if head else []
        out = engine.answer(
            tokens,
            q.letters,
            decoding,
            seeds,
            is_final=lambda text: letter_is_final(text, q.letters),
            splits=splits,
        )
    except Exception as exc:  # recorded per question unless the config says fail
        if on_error == "fail":
            raise
        rec.update(
            status="error",
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(limit=3),
        )
        return rec
    g = out["greedy"]
    fill_answers(
        rec,
        q,
        (g.raw, len(g.tokens), out["latency_s"]),
        [(s.raw, len(s.tokens)) for s in out["samples"]],
        out["letter_probs"],
        out["letter_mass"],
    )
    rec["prompt_tokens"] = len(tokens)
    return rec


def prompt_splits(
    engine: LlamaEngine, text: str, tokens: list[int], q: Question, head: list[int]
) -> list[int]:
    """Token positions where the engine splits a prompt: the end of the template head
    and each evidence entry offset (evidence_entry_offsets), each mapped to the
    tokens the prompt shares with its own text up to there. Depends on the prompt
    alone, so results do not depend on which prompts ran before."""
    cuts = [head_length(head, tokens)]
    for offset in evidence_entry_offsets(text, q):
        cuts.append(head_length(engine.tokenize(text[:offset]), tokens))
    return cuts


def letter_mass_median(records: Sequence[dict]) -> float:
    """Median raw first-token letter mass of the answered records; NaN without logits."""
    masses = [
        r["letter_mass"]
        for r in records
        if r["status"] == "ok" and r.get("letter_mass") is not None  # absent: no logits
    ]
    return statistics.median(masses) if masses else math.nan


def parse_summary(records: Sequence[dict]) -> dict:
    """Parse rate, NULL counts and letter mass of one prediction file, for logs and tables.

    `prob_reliable` is False where the median letter mass is below
    RELIABLE_LETTER_MASS (or there are no letter probabilities at all).
    """
    ok = [r for r in records if r["status"] == "ok"]
    median_mass = letter_mass_median(records)
    greedy_null = sum(r["greedy"]["letter"] is None for r in ok)
    samples = [s for r in ok for s in r["samples"]]
    sample_null = sum(s["letter"] is None for s in samples)
    return {
        "n_questions": len(records),
        "n_ok": len(ok),
        "n_skipped": sum(r["status"] == "skipped" for r in records),
        "n_error": sum(r["status"] == "error" for r in records),
        "greedy_null": greedy_null,
        "greedy_parse_rate": (len(ok) - greedy_null) / len(ok) if ok else float("nan"),
        "sample_null": sample_null,
        "sample_parse_rate": (len(samples) - sample_null) / len(samples)
        if samples
        else float("nan"),
        "letter_mass_median": median_mass,
        "prob_reliable": bool(median_mass >= RELIABLE_LETTER_MASS),
    }
