"""Agentic RAG: the model plans sub-queries, retrieves, reads and decides to stop.

Small models often write unusable plans. A plan is usable when it yields at
least one query of 3-30 words that is not an echo of our instructions; when a
round yields none, the agent falls back to the question stem as its query,
and the fallback is recorded (and counted) in the transcript.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from safescale.data.question import Question
from safescale.retrieval.search import rrf

PLAN_INSTRUCTION = (
    "You are a radiology research assistant. Write up to {n} short search queries, one per "
    "line, that would find the facts needed to answer the question. Write DONE instead if "
    "the notes already answer it."
)
# Echoes of our own prompt, and chatter, are not queries.
_BANNED = (
    "search quer",
    "research assistant",
    "question:",
    "options:",
    "notes:",
    "notes so far",
    "answer:",
    "write done",
    "already answer",
    "here are",
)
_ECHOED_OPTION = re.compile(r"^[A-E][.)]\s")


@dataclass(frozen=True)
class AgentSettings:
    max_rounds: int = 3
    queries_per_round: int = 2
    top_k_per_query: int = 3
    final_k: int = 5
    plan_max_tokens: int = 48


def plan_prompt(q: Question, notes: Sequence[str], n_queries: int) -> list[dict[str, str]]:
    options = "\n".join(f"{k}. {v}" for k, v in q.options.items())
    notes_block = "\n".join(f"- {n}" for n in notes) if notes else "- (none yet)"
    user = (
        f"Question: {q.question}\nOptions:\n{options}\n\nNotes so far:\n{notes_block}\n\n"
        "Search queries:"
    )
    return [
        {"role": "system", "content": PLAN_INSTRUCTION.format(n=n_queries)},
        {"role": "user", "content": user},
    ]


def parse_plan(text: str, limit: int, echo: Iterable[str] = ()) -> tuple[list[str], bool]:
    """(usable queries, said DONE); lines repeating `echo` (our notes, the stem) are dropped."""
    echoed = {e.strip().lower() for e in echo}
    done = bool(re.match(r"^\W*done\b", text.strip(), re.IGNORECASE))
    queries: list[str] = []
    for line in text.splitlines():
        query = re.sub(r"^\s*(?:[-*•]|\d+[.)]|query\s*\d*:)\s*", "", line, flags=re.I).strip()
        query = query.strip("\"'` ")
        words = query.split()
        lowered = query.lower()
        if (
            not 3 <= len(words) <= 30
            or any(b in lowered for b in _BANNED)
            or lowered.startswith("done")
            or _ECHOED_OPTION.match(query)
            or lowered in echoed
        ):
            continue
        if query.lower() not in (x.lower() for x in queries):
            queries.append(query)
    return queries[:limit], done and not queries


def agent_transcript(
    q: Question,
    generate: Callable[[list[dict[str, str]], int], str],
    search: Callable[[str, int], list[tuple[str, float]]],
    title_of: Callable[[str], str],
    settings: AgentSettings,
) -> dict:
    """One question's transcript; `final_chunk_ids` feed the answering prompt."""
    rounds: list[dict] = []
    rankings: list[list[str]] = []
    seen: set[str] = set()
    notes: list[str] = []
    fallbacks = 0
    for r in range(settings.max_rounds):
        raw = generate(plan_prompt(q, notes, settings.queries_per_round), settings.plan_max_tokens)
        queries, done = parse_plan(raw, settings.queries_per_round, [*notes, q.question])
        if done and r > 0:
            rounds.append({"round": r + 1, "plan": raw, "queries": [], "decision": "stop: DONE"})
            break
        fallback = not queries
        if fallback:
            fallbacks += 1
            queries = [q.question]
        retrieved = []
        for query in queries:
            hits = [cid for cid, _ in search(query, settings.top_k_per_query)]
            rankings.append(hits)
            retrieved.append({"query": query, "chunk_ids": hits})
        new = list(
            dict.fromkeys(cid for item in retrieved for cid in item["chunk_ids"] if cid not in seen)
        )
        seen.update(new)
        notes.extend(dict.fromkeys(title_of(cid) for cid in new))
        decision = "continue"
        if not new:
            decision = "stop: no new evidence"
        elif r + 1 == settings.max_rounds:
            decision = "stop: round limit"
        rounds.append(
            {
                "round": r + 1,
                "plan": raw,
                "fallback": fallback,
                "queries": queries,
                "retrieved": retrieved,
                "new_chunk_ids": new,
                "decision": decision,
            }
        )
        if decision != "continue":
            break
    final = [cid for cid, _ in rrf(rankings)][: settings.final_k]
    return {
        "question_id": q.question_id,
        "rounds": rounds,
        "n_rounds": len(rounds),
        "n_fallbacks": fallbacks,
        "n_model_queries": sum(len(x["queries"]) for x in rounds if not x.get("fallback")),
        "final_chunk_ids": final,
    }
