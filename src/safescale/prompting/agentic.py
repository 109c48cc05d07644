"""Agentic RAG: the model reads retrieved passages, searches again or decides it has enough.

The loop is one conversation per question (protocol: prompting/agent_protocol.py).
Round 1 shows the passages the question stem retrieves; each round the model
either names the passages that suffice (`ENOUGH: 2, 5`), which ends the loop in
any round, or writes queries, whose new passages the next round shows. Passage
text is shown within a token budget (truncation is marked). The last round asks
for ENOUGH only. The final evidence is what the model chose; when it chose
nothing usable, the fused ranking of the stem's and the model's searches, marked
as a fallback.

Small models often do not follow the protocol. Such a round is counted as a
fallback (and the stem searches deeper, so the next round still has something
new to read); `summarize_transcripts` reports per model how often that happened,
so a model that mostly fell back is flagged, not passed off as agentic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from safescale.data.question import Question
from safescale.prompting.agent_protocol import (
    ASK,
    ASK_LAST,
    NO_NEW,
    NO_ROOM,
    UNUSABLE,
    opening_messages,
    parse_reply,
)
from safescale.retrieval.chunking import Chunk
from safescale.retrieval.search import rrf

Generate = Callable[[list[dict[str, str]], int], str]
Search = Callable[[str, int], list[tuple[str, float]]]
# (text, max tokens) -> (text within max tokens, its tokens, whether it was cut)
Clip = Callable[[str, int], tuple[str, int, bool]]
# cumulative counters of the agent model: prompt_tokens, prompt_tokens_evaluated, decode_tokens
Meter = Callable[[], Mapping[str, int]]

USAGE_KEYS = ("prompt_tokens", "prompt_tokens_evaluated", "decode_tokens")
MIN_SHOWN_TOKENS = 24  # a passage cut shorter than this tells the model nothing
# A model whose share of usable rounds is below this (or whose evidence was mostly
# the fused fallback) "mostly fell back": its agentic_rag is close to standard RAG.
MOSTLY_FALLBACK_BELOW = 0.5


@dataclass(frozen=True)
class AgentSettings:
    max_rounds: int = 2
    queries_per_round: int = 2
    top_k_per_query: int = 3
    final_k: int = 5
    plan_max_tokens: int = 48
    passage_max_tokens: int = 120
    passage_budget_tokens: int = 600


def clip_words(text: str, max_tokens: int) -> tuple[str, int, bool]:
    """A `Clip` that counts words (for tests and callers without a tokenizer)."""
    words = text.split()
    kept = words[:max_tokens]
    return " ".join(kept), len(kept), len(words) > max_tokens


def question_block(q: Question) -> str:
    options = "\n".join(f"{k}. {v}" for k, v in q.options.items())
    return f"Question: {q.question}\nOptions:\n{options}"


def _show(
    pending: Sequence[str],
    chunk_of: Callable[[str], Chunk],
    first_number: int,
    budget_left: int,
    settings: AgentSettings,
    clip: Clip,
) -> tuple[list[dict[str, Any]], list[str], int]:
    """Passages that fit the budget: their records, prompt lines and the budget left."""
    records: list[dict[str, Any]] = []
    lines: list[str] = []
    for cid in pending:
        room = min(settings.passage_max_tokens, budget_left)
        if room < MIN_SHOWN_TOKENS:
            break
        chunk = chunk_of(cid)
        text, n_tokens, cut = clip(chunk.text, room)
        number = first_number + len(records)
        lines.append(f"[{number}] {chunk.title}: {text}" + (" ... (truncated)" if cut else ""))
        records.append({"n": number, "chunk_id": cid, "tokens": n_tokens, "truncated": cut})
        budget_left -= n_tokens
    return records, lines, budget_left


def _interleave(rankings: Sequence[Sequence[str]], exclude: set[str]) -> list[str]:
    """Rank 1 of every ranking, then rank 2...: each query gets its best passages shown."""
    out: dict[str, None] = {}
    for depth in range(max((len(r) for r in rankings), default=0)):
        for ranking in rankings:
            if depth < len(ranking) and ranking[depth] not in exclude:
                out.setdefault(ranking[depth])
    return list(out)


def _usage_delta(meter: Meter | None, before: Mapping[str, int] | None) -> dict[str, int | None]:
    if meter is None or before is None:
        return dict.fromkeys(USAGE_KEYS)
    after = meter()
    return {k: int(after[k] - before[k]) for k in USAGE_KEYS}


def agent_transcript(
    q: Question,
    generate: Generate,
    search: Search,
    chunk_of: Callable[[str], Chunk],
    settings: AgentSettings,
    clip: Clip = clip_words,
    meter: Meter | None = None,
) -> dict:
    """One question's conversation and its accounting; `final_chunk_ids` feed the answer prompt."""
    k, n = settings.top_k_per_query, settings.queries_per_round

    def ids(query: str, depth: int) -> list[str]:
        return [cid for cid, _ in search(query, depth)]

    seed = ids(q.question, k)
    stem_ranking = seed  # the stem's ranking, as deep as it was searched
    rankings: list[list[str]] = []  # the model's queries' rankings
    retrieved: set[str] = set(seed)
    shown: list[str] = []
    pending, note = seed, ""
    budget_left = settings.passage_budget_tokens
    messages = opening_messages(n)
    rounds: list[dict[str, Any]] = []
    stopped_by, chosen = "limit", []
    for r in range(1, settings.max_rounds + 1):
        last = r == settings.max_rounds
        records, lines, budget_left = _show(
            pending, chunk_of, len(shown) + 1, budget_left, settings, clip
        )
        shown += [x["chunk_id"] for x in records]
        if pending and not records:
            note = " ".join(filter(None, [note, NO_ROOM]))
        parts = [question_block(q)] if r == 1 else []
        parts += [note] if note else []
        if lines:
            parts.append(("Passages:\n" if r == 1 else "New passages:\n") + "\n".join(lines))
        parts.append(ASK_LAST if last else ASK.format(n=n))
        messages.append({"role": "user", "content": "\n\n".join(parts)})
        before = meter() if meter else None
        raw = generate(messages, settings.plan_max_tokens)
        usage = _usage_delta(meter, before)
        messages.append({"role": "assistant", "content": raw.strip()})
        reply = parse_reply(raw, n, echo=[q.question])
        step: dict[str, Any] = {
            "round": r,
            "shown": records,
            "reply": raw,
            "decision": "enough" if reply.enough else "queries" if reply.queries else "none",
            "queries": list(reply.queries),
            "rejected_queries": list(reply.rejected),
            **usage,
        }
        rounds.append(step)
        if reply.enough:
            stopped_by = "model"
            chosen = [x for x in reply.numbers if 1 <= x <= len(shown)]
            step["chosen"] = chosen
            step["invalid_numbers"] = [x for x in reply.numbers if x not in chosen]
            break
        if last:
            break
        if reply.queries:
            searches = [(query, "model", ids(query, k)) for query in reply.queries]
            note = ""
        else:  # no usable reply: the stem, searched deeper, gives the next round new passages
            stem_ranking = ids(q.question, k + len(retrieved))
            deeper = [c for c in stem_ranking if c not in retrieved][:k]
            searches = [(q.question, "fallback", deeper)]
            note = UNUSABLE
        step["searched"] = [{"query": x, "by": by, "chunk_ids": c} for x, by, c in searches]
        rankings += [c for query, by, c in searches if by == "model"]
        pending = _interleave([c for _, _, c in searches], set(shown))
        retrieved.update(pending)
        if not pending:
            note = " ".join(filter(None, [note, NO_NEW]))
    evidence = "model" if chosen else "fallback"
    final = (
        [shown[x - 1] for x in chosen][: settings.final_k]
        if chosen
        else [cid for cid, _ in rrf([stem_ranking, *rankings])][: settings.final_k]
    )
    totals = {
        key: None if any(s[key] is None for s in rounds) else sum(s[key] for s in rounds)
        for key in USAGE_KEYS
    }
    usable = sum(s["decision"] != "none" for s in rounds)
    return {
        "question_id": q.question_id,
        "seed": {"query": q.question, "chunk_ids": seed},
        "rounds": rounds,
        "n_rounds": len(rounds),
        "usable_rounds": usable,
        "n_fallbacks": len(rounds) - usable,
        "n_model_queries": sum(len(s["queries"]) for s in rounds),
        "stopped_by": stopped_by,
        "evidence": evidence,
        "passages_shown": len(shown),
        "passages_chosen": len(final) if chosen else 0,
        **totals,
        "final_chunk_ids": final,
    }


SUMMARY_COLUMNS = [
    "model",
    "agent_model",
    "questions",
    "rounds",
    "usable_rounds",
    "usable_share",
    "model_queries",
    "model_stopped",
    "limit_stopped",
    "fallback_evidence",
    "passages_shown",
    "passages_chosen",
    "prompt_tokens",
    "prompt_tokens_evaluated",
    "decode_tokens",
    "mostly_fallback",
]


def summarize_transcripts(transcripts: Mapping[str, Sequence[Mapping[str, Any]]]) -> pd.DataFrame:
    """One row per model under test: how often its agent decided, stopped and chose.

    `mostly_fallback`: under half of its rounds were usable, or the fused fallback
    (not the model's choice) gave the evidence of over half of its questions.
    """
    rows = []
    for model, ts in transcripts.items():
        questions = len(ts)
        rounds = sum(t["n_rounds"] for t in ts)
        usable = sum(t["usable_rounds"] for t in ts)
        share = usable / rounds if rounds else 0.0
        fallback = sum(t["evidence"] == "fallback" for t in ts)
        agents = sorted({t.get("agent_model") or model for t in ts}) or [model]
        row: dict[str, Any] = {
            "model": model,
            "agent_model": ",".join(agents),
            "questions": questions,
            "rounds": rounds,
            "usable_rounds": usable,
            "usable_share": round(share, 4),
            "model_queries": sum(t["n_model_queries"] for t in ts),
            "model_stopped": sum(t["stopped_by"] == "model" for t in ts),
            "limit_stopped": sum(t["stopped_by"] == "limit" for t in ts),
            "fallback_evidence": fallback,
            "passages_shown": sum(t["passages_shown"] for t in ts),
            "passages_chosen": sum(t["passages_chosen"] for t in ts),
        }
        for key in USAGE_KEYS:
            values = [t.get(key) for t in ts]
            row[key] = None if any(v is None for v in values) else sum(values)
        row["mostly_fallback"] = bool(
            questions == 0
            or share < MOSTLY_FALLBACK_BELOW
            or fallback > questions * MOSTLY_FALLBACK_BELOW
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def mostly_fallback_models(summary: pd.DataFrame) -> list[str]:
    """Models whose agentic condition mostly fell back (for SUMMARY.md's flag)."""
    return [str(m) for m in summary.loc[summary["mostly_fallback"].astype(bool), "model"]]
