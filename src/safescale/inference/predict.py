"""One prediction record per (model, condition, question), in docs/FORMATS.md's shape."""

from __future__ import annotations

import hashlib
import json
import traceback
from collections.abc import Sequence

from safescale.inference.llama_engine import Decoding, LlamaEngine
from safescale.inference.parsing import letter_is_final, parse_letter
from safescale.inference.sampling import derive_seed
from safescale.question import Question


def run_key(prompts: Sequence[dict], model_sha: str, decoding: Decoding, seed: int) -> str:
    """Identifies a prediction run; a partial file resumes only under the same key."""
    blob = json.dumps([prompts, model_sha, repr(decoding), seed], sort_keys=True, default=str)
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


def predict_llama(
    engine: LlamaEngine,
    q: Question,
    prompt: dict,
    decoding: Decoding,
    seed: int,
    on_error: str = "record",
) -> dict:
    rec = _base(prompt)
    if prompt["status"] != "ok":
        return rec  # skipped condition: kept and counted downstream
    seeds = sample_seeds(
        seed, prompt["model"], prompt["condition"], q.question_id, decoding.n_samples
    )
    rec["seed"] = seeds[0] if seeds else None
    try:
        tokens = engine.tokenize(prompt["prompt"])
        out = engine.answer(tokens, q.letters, decoding, seeds, is_final=letter_is_final)
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
    rec.update(
        greedy={
            "raw": g.raw,
            "letter": parse_letter(g.raw, q.options),
            "n_tokens": len(g.tokens),
            "latency_s": round(out["latency_s"], 4),
        },
        samples=[
            {"raw": s.raw, "letter": parse_letter(s.raw, q.options), "n_tokens": len(s.tokens)}
            for s in out["samples"]
        ],
        letter_probs={k: round(v, 8) for k, v in out["letter_probs"].items()},
        letter_mass=round(out["letter_mass"], 8),
        prompt_tokens=len(tokens),
    )
    return rec


def parse_summary(records: Sequence[dict]) -> dict:
    """Parse rate and NULL counts of one prediction file, for logs and tables."""
    ok = [r for r in records if r["status"] == "ok"]
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
    }
