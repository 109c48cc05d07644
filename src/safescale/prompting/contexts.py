"""Per-condition context blocks and prompt records (what each model sees).

A condition a question or model cannot support is written as a `skipped`
record with its reason, never silently left out or faked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from safescale import conditions as C
from safescale.data.question import Question
from safescale.prompting.templates import Renderer
from safescale.retrieval.chunking import Chunk


@dataclass(frozen=True)
class Budget:
    """The study's long-context rule: window - question reserve - max new tokens - margin."""

    window: int
    question_reserve: int = 2048
    max_new_tokens: int = 10
    margin: int = 1000
    cap: int | None = None

    @property
    def context_tokens(self) -> int:
        room = self.window - self.question_reserve - self.max_new_tokens - self.margin
        return max(0, room if self.cap is None else min(room, self.cap))


def format_chunks(chunks: Sequence[Chunk]) -> str:
    return "\n\n".join(f"[{i}] {c.title}: {c.text}" for i, c in enumerate(chunks, 1))


def fill_to_budget(chunks: Sequence[Chunk], budget: int, count) -> list[Chunk]:
    """Ranked chunks while the whole block fits `budget` tokens (whole chunks only)."""
    chosen: list[Chunk] = []
    for chunk in chunks:
        if count(format_chunks([*chosen, chunk])) > budget:
            break
        chosen.append(chunk)
    return chosen


def pad_to_length(chunk: Chunk, target_tokens: int, renderer: Renderer) -> str:
    """The top-1 chunk repeated until it has the token length of the top-10 block."""
    one = format_chunks([chunk])
    n_one = max(1, renderer.count(one))
    copies = max(1, -(-target_tokens // n_one))
    text = "\n\n".join([one] * copies)
    tokens = renderer.llama.tokenize(text.encode(), add_bos=False, special=False)[:target_tokens]
    return renderer.llama.detokenize(tokens).decode("utf-8", errors="ignore")


def condition_context(
    q: Question,
    condition: str,
    ranked: Sequence[Chunk],
    renderer: Renderer,
    budget: Budget,
    top_k: int,
    agentic_chunks: Sequence[Chunk] | None,
) -> tuple[str | None, list[str], str | None]:
    """(context, chunk ids, skip reason) for one question under one condition."""
    if condition == C.CLOSED_BOOK:
        return None, [], None
    if condition in C.EVIDENCE_FIELD:
        text = getattr(q, C.EVIDENCE_FIELD[condition])
        if not text:
            return None, [], f"the benchmark has no {C.EVIDENCE_FIELD[condition]} for this question"
        return text, [], None
    if condition in C.RETRIEVAL_TOP_K:
        k = C.RETRIEVAL_TOP_K[condition] or top_k
        chosen = list(ranked[:k])
        if not chosen:
            return None, [], "no retrieved chunks"
        return format_chunks(chosen), [c.chunk_id for c in chosen], None
    if condition == C.PADDED_TOP_1:
        if not ranked:
            return None, [], "no retrieved chunks"
        target = renderer.count(format_chunks(ranked[:10]))
        return pad_to_length(ranked[0], target, renderer), [ranked[0].chunk_id], None
    if condition == C.AGENTIC_RAG:
        if not agentic_chunks:
            return None, [], "no agentic evidence for this question"
        return format_chunks(agentic_chunks), [c.chunk_id for c in agentic_chunks], None
    if condition == C.MAX_CONTEXT:
        if budget.context_tokens <= 0:
            return None, [], f"window {budget.window} leaves no room for context"
        chosen = fill_to_budget(ranked, budget.context_tokens, renderer.count)
        if not chosen:
            return None, [], f"no retrieved chunk fits the {budget.context_tokens}-token budget"
        return format_chunks(chosen), [c.chunk_id for c in chosen], None
    raise ValueError(f"unknown condition '{condition}'")


def build_prompt_records(
    questions: Sequence[Question],
    model: str,
    condition: str,
    renderer: Renderer,
    budget: Budget,
    ranked: Mapping[str, Sequence[Chunk]],
    top_k: int,
    agentic: Mapping[str, Sequence[Chunk]] | None = None,
) -> list[dict]:
    records = []
    for q in questions:
        context, ids, reason = condition_context(
            q,
            condition,
            ranked.get(q.question_id, []),
            renderer,
            budget,
            top_k,
            None if agentic is None else agentic.get(q.question_id),
        )
        record = {
            "model": model,
            "condition": condition,
            "question_id": q.question_id,
            "status": "ok",
            "reason": None,
            "context_ids": ids,
            "prompt": None,
            "n_prompt_tokens": 0,
            "n_context_tokens": renderer.count(context) if context else 0,
        }
        if reason is None:
            prompt = renderer.render(q, context)
            n = renderer.count(prompt)
            if n + budget.max_new_tokens > budget.window:
                reason = (
                    f"prompt of {n} tokens + {budget.max_new_tokens} new tokens exceeds "
                    f"the {budget.window}-token window"
                )
            record.update(prompt=prompt, n_prompt_tokens=n)
        if reason is not None:
            record.update(status="skipped", reason=reason, prompt=None)
        records.append(record)
    return records
