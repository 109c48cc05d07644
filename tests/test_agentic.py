"""Agentic RAG with scripted fake models: the read-and-decide loop and its accounting."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pandas as pd
import pytest

from safescale.data.question import OptionLabels, Question
from safescale.prompting.agent_protocol import INSTRUCTION, UNUSABLE
from safescale.prompting.agentic import (
    SUMMARY_COLUMNS,
    AgentSettings,
    agent_transcript,
    clip_words,
    mostly_fallback_models,
    summarize_transcripts,
)
from safescale.retrieval.chunking import Chunk

Q = Question(
    "q7",
    "Which first imaging test suits a suspected pulmonary embolism?",
    {"A": "Non-contrast CT of the head", "B": "CT pulmonary angiography", "C": "Knee MRI"},
    "B",
    {k: OptionLabels() for k in "ABC"},
)
SETTINGS = AgentSettings(
    max_rounds=3,
    queries_per_round=2,
    top_k_per_query=3,
    final_k=5,
    plan_max_tokens=48,
    passage_max_tokens=30,
    passage_budget_tokens=1000,
)


class ScriptedModel:
    """A fake `generate`: returns the scripted replies in turn (the last one repeats)."""

    def __init__(self, *replies: str):
        self.replies = list(replies)
        self.calls: list[tuple[list[dict[str, str]], int]] = []

    def __call__(self, messages: list[dict[str, str]], max_tokens: int) -> str:
        self.calls.append(([dict(m) for m in messages], max_tokens))
        return self.replies[min(len(self.calls), len(self.replies)) - 1]

    def user_turn(self, call: int) -> str:
        return self.calls[call][0][-1]["content"]


class RecordingSearch:
    """A fake `search`: looks hits up in a table or a function, and records every call."""

    def __init__(self, hits: dict[str, list[str]] | Callable[[str], list[str]]):
        self.hits = hits
        self.calls: list[tuple[str, int]] = []

    def __call__(self, query: str, k: int) -> list[tuple[str, float]]:
        self.calls.append((query, k))
        ids = self.hits(query) if callable(self.hits) else self.hits[query]
        return [(cid, 1.0 / rank) for rank, cid in enumerate(ids[:k], 1)]


def chunk_of(cid: str) -> Chunk:
    """Passage text that names its id, 40 words long (so 30-word clips are truncated)."""
    words = " ".join(f"w{i}" for i in range(36))
    return Chunk(cid, cid.split("#")[0], f"Title {cid}", f"Text of {cid} {words}", 40)


def stem_then(table: dict[str, list[str]]) -> RecordingSearch:
    """Search whose question-stem hits are s1..s9 and other queries come from `table`."""
    stem = [f"s{i}" for i in range(1, 10)]
    return RecordingSearch(lambda query: stem if query == Q.question else table[query])


def run(model: ScriptedModel, search: RecordingSearch, settings: AgentSettings = SETTINGS, **kw):
    return agent_transcript(Q, model, search, chunk_of, settings, **kw)


# --------------------------------------------------------------------------- the loop


def test_enough_in_round_one_stops_and_its_choice_is_the_evidence():
    model = ScriptedModel("ENOUGH: 2, 3")
    search = stem_then({})
    t = run(model, search)
    assert len(model.calls) == 1 and search.calls == [(Q.question, 3)]
    assert t["n_rounds"] == 1 and t["stopped_by"] == "model"
    assert t["evidence"] == "model" and t["final_chunk_ids"] == ["s2", "s3"]
    assert t["passages_shown"] == 3 and t["passages_chosen"] == 2
    assert t["usable_rounds"] == 1 and t["n_fallbacks"] == 0 and t["n_model_queries"] == 0
    (r,) = t["rounds"]
    assert r["decision"] == "enough" and r["chosen"] == [2, 3] and r["invalid_numbers"] == []
    assert "searched" not in r
    # round 1 shows the question, the options and the TEXT of the stem's passages
    first = model.user_turn(0)
    assert Q.question in first and "B. CT pulmonary angiography" in first
    assert "[1] Title s1: Text of s1 w0" in first and "[3] Title s3: Text of s3" in first


def test_read_passages_appear_in_the_next_round_and_new_ones_are_numbered_on():
    model = ScriptedModel(
        "QUERY: D-dimer before imaging\nQUERY: CT angiography for embolism", "ENOUGH: 5, 2"
    )
    search = stem_then(
        {"D-dimer before imaging": ["d1", "s1", "d2"], "CT angiography for embolism": ["c1"]}
    )
    t = run(model, search)
    assert search.calls[1:] == [("D-dimer before imaging", 3), ("CT angiography for embolism", 3)]
    second = model.calls[1][0]
    # the conversation goes on: round 1's prompt and reply, then the new passages
    assert second[: len(model.calls[0][0])] == model.calls[0][0]
    assert second[-2] == {
        "role": "assistant",
        "content": "QUERY: D-dimer before imaging\nQUERY: CT angiography for embolism",
    }
    # already shown s1 is not shown again; rank 1 of each query first, then rank 2
    turn = second[-1]["content"]
    assert "New passages:\n[4] Title d1:" in turn and "[5] Title c1:" in turn
    assert "[6] Title d2:" in turn and "Title s1" not in turn
    assert [x["chunk_id"] for x in t["rounds"][1]["shown"]] == ["d1", "c1", "d2"]
    assert t["rounds"][0]["searched"] == [
        {"query": "D-dimer before imaging", "by": "model", "chunk_ids": ["d1", "s1", "d2"]},
        {"query": "CT angiography for embolism", "by": "model", "chunk_ids": ["c1"]},
    ]
    assert t["final_chunk_ids"] == ["c1", "s2"]  # the model's order
    assert (t["n_rounds"], t["n_model_queries"], t["passages_shown"]) == (2, 2, 6)
    assert t["stopped_by"] == "model" and t["evidence"] == "model"


def test_passage_text_is_cut_to_the_budget_and_marked_truncated():
    settings = AgentSettings(max_rounds=2, passage_max_tokens=30, passage_budget_tokens=70)
    model = ScriptedModel("QUERY: D-dimer before imaging", "ENOUGH: 1")
    t = run(model, stem_then({"D-dimer before imaging": ["d1", "d2"]}), settings)
    shown = t["rounds"][0]["shown"]
    # 30 + 30 words, then 10 left: below the minimum a passage is worth showing
    assert [(x["n"], x["tokens"], x["truncated"]) for x in shown] == [(1, 30, True), (2, 30, True)]
    assert model.user_turn(0).count("... (truncated)") == 2
    assert t["rounds"][1]["shown"] == [] and "(No room to show more passages.)" in model.user_turn(
        1
    )
    assert t["passages_shown"] == 2


def test_unusable_replies_are_counted_and_the_stem_searches_deeper():
    model = ScriptedModel("I think the answer is B.", "ENOUGH: 4")
    search = stem_then({})
    t = run(model, search)
    assert search.calls == [(Q.question, 3), (Q.question, 6)]
    first, second = t["rounds"]
    assert first["decision"] == "none" and first["queries"] == []
    assert first["searched"] == [
        {"query": Q.question, "by": "fallback", "chunk_ids": ["s4", "s5", "s6"]}
    ]
    assert UNUSABLE in model.user_turn(1) and "[4] Title s4:" in model.user_turn(1)
    assert t["n_fallbacks"] == 1 and t["usable_rounds"] == 1 and t["n_model_queries"] == 0
    assert second["decision"] == "enough" and t["final_chunk_ids"] == ["s4"]


def test_a_model_that_never_follows_the_protocol_is_reported_not_hidden():
    model = ScriptedModel("The answer is B", "Sure! Here is my answer: B", "B")
    t = run(model, stem_then({}))
    assert t["n_rounds"] == 3 and t["usable_rounds"] == 0 and t["n_fallbacks"] == 3
    assert t["stopped_by"] == "limit" and t["evidence"] == "fallback"
    assert t["passages_chosen"] == 0
    # the stem's own ranking (searched deeper in each fallback), cut at final_k
    assert t["final_chunk_ids"] == ["s1", "s2", "s3", "s4", "s5"]
    table = summarize_transcripts({"mute": [t, t]})
    row = table.iloc[0]
    assert (row["usable_share"], row["fallback_evidence"], row["limit_stopped"]) == (0.0, 2, 2)
    assert bool(row["mostly_fallback"]) is True
    assert mostly_fallback_models(table) == ["mute"]


def test_the_last_round_asks_for_enough_and_its_queries_are_not_searched():
    settings = AgentSettings(max_rounds=2, top_k_per_query=2)
    model = ScriptedModel("QUERY: D-dimer before imaging", "QUERY: Wells score first")
    search = stem_then({"D-dimer before imaging": ["d1", "d2"]})
    t = run(model, search, settings)
    assert "Last round, no more searches" in model.user_turn(1)
    assert "Last round" not in model.user_turn(0)
    assert [q for q, _ in search.calls] == [Q.question, "D-dimer before imaging"]
    assert t["rounds"][1]["queries"] == ["Wells score first"]
    assert "searched" not in t["rounds"][1]
    assert t["stopped_by"] == "limit" and t["evidence"] == "fallback"
    assert t["usable_rounds"] == 2  # it followed the protocol, but never chose
    # rrf of the stem's [s1, s2] and [d1, d2]: s1 = d1 = 1/61, then s2 = d2 (ties by id)
    assert t["final_chunk_ids"] == ["d1", "s1", "d2", "s2"]


def test_enough_without_valid_numbers_stops_but_falls_back_for_evidence():
    model = ScriptedModel("ENOUGH: 9")
    t = run(model, stem_then({}))
    assert t["stopped_by"] == "model" and t["evidence"] == "fallback"
    assert t["rounds"][0]["chosen"] == [] and t["rounds"][0]["invalid_numbers"] == [9]
    assert t["final_chunk_ids"] == ["s1", "s2", "s3"]
    bare = run(ScriptedModel("Enough."), stem_then({}))
    assert bare["stopped_by"] == "model" and bare["evidence"] == "fallback"


def test_choice_is_capped_at_final_k():
    settings = AgentSettings(max_rounds=1, final_k=2)
    t = run(ScriptedModel("ENOUGH: 3, 1, 2"), stem_then({}), settings)
    assert t["final_chunk_ids"] == ["s3", "s1"] and t["passages_chosen"] == 2


def test_queries_that_find_nothing_new_say_so():
    model = ScriptedModel("QUERY: embolism imaging test", "ENOUGH: 1")
    t = run(model, stem_then({"embolism imaging test": ["s1", "s2"]}))
    assert "(Your queries found no new passages.)" in model.user_turn(1)
    assert t["rounds"][1]["shown"] == [] and t["passages_shown"] == 3


def test_the_question_stem_as_a_query_is_no_query_of_the_models_own():
    model = ScriptedModel(f"QUERY: {Q.question}", "ENOUGH: 1")
    t = run(model, stem_then({}))
    assert t["rounds"][0]["decision"] == "none"
    assert t["rounds"][0]["rejected_queries"] == [Q.question.rstrip("?")]
    assert t["n_fallbacks"] == 1


def test_token_usage_per_round_and_question_comes_from_the_meter():
    counter = itertools.count(1)
    usage = {"prompt_tokens": 0, "prompt_tokens_evaluated": 0, "decode_tokens": 0}

    class Metered(ScriptedModel):
        def __call__(self, messages, max_tokens):
            i = next(counter)
            usage["prompt_tokens"] += 100 * i
            usage["prompt_tokens_evaluated"] += 60
            usage["decode_tokens"] += 7
            return super().__call__(messages, max_tokens)

    model = Metered("QUERY: D-dimer before imaging", "ENOUGH: 1")
    t = run(model, stem_then({"D-dimer before imaging": ["d1"]}), meter=lambda: dict(usage))
    assert [r["prompt_tokens"] for r in t["rounds"]] == [100, 200]
    assert (t["prompt_tokens"], t["prompt_tokens_evaluated"], t["decode_tokens"]) == (300, 120, 14)
    no_meter = run(ScriptedModel("ENOUGH: 1"), stem_then({}))
    assert no_meter["prompt_tokens"] is None and no_meter["rounds"][0]["decode_tokens"] is None


def test_the_agent_is_asked_with_the_instruction_and_the_reply_cap():
    model = ScriptedModel("ENOUGH: 1")
    run(model, stem_then({}))
    messages, cap = model.calls[0]
    assert cap == 48
    assert messages[0] == {"role": "system", "content": INSTRUCTION.format(n=2)}
    # the worked example (bronze, outside medicine) precedes the question
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "user", "assistant", "user"]
    assert "bronze" in messages[1]["content"] and messages[4]["content"] == "ENOUGH: 4"


def test_clip_words():
    assert clip_words("a b c d", 2) == ("a b", 2, True)
    assert clip_words("a b", 2) == ("a b", 2, False)


# --------------------------------------------------------------------------- the summary


def transcript(evidence: str, stopped_by: str, rounds: int, usable: int, **kw) -> dict:
    return {
        "question_id": "q",
        "n_rounds": rounds,
        "usable_rounds": usable,
        "n_model_queries": kw.get("queries", 0),
        "stopped_by": stopped_by,
        "evidence": evidence,
        "passages_shown": 3,
        "passages_chosen": 2 if evidence == "model" else 0,
        "prompt_tokens": 800,
        "prompt_tokens_evaluated": 700,
        "decode_tokens": 10,
    }


def test_summary_counts_per_model_and_flags_mostly_fallback():
    good = [transcript("model", "model", 1, 1)] * 3 + [transcript("fallback", "limit", 2, 1)]
    # usable in most rounds, but the fused fallback chose the evidence of 3 of 4 questions
    lazy = [transcript("fallback", "limit", 2, 2, queries=2)] * 3 + [
        transcript("model", "model", 1, 1)
    ]
    table = summarize_transcripts({"good": good, "lazy": lazy})
    assert list(table.columns) == SUMMARY_COLUMNS
    g = table.set_index("model").loc["good"]
    assert (g["questions"], g["rounds"], g["usable_rounds"]) == (4, 5, 4)
    assert g["usable_share"] == 0.8 and g["model_stopped"] == 3 and g["limit_stopped"] == 1
    assert (g["fallback_evidence"], g["passages_shown"], g["passages_chosen"]) == (1, 12, 6)
    assert (g["prompt_tokens"], g["prompt_tokens_evaluated"], g["decode_tokens"]) == (
        3200,
        2800,
        40,
    )
    assert not g["mostly_fallback"]
    assert mostly_fallback_models(table) == ["lazy"]
    assert mostly_fallback_models(pd.DataFrame(columns=SUMMARY_COLUMNS)) == []


@pytest.mark.parametrize("share_ok", [True, False])
def test_mostly_fallback_threshold_on_usable_share(share_ok):
    rows = [transcript("model", "model", 2, 2 if share_ok else 0)] * 2
    table = summarize_transcripts({"m": rows})
    assert bool(table.iloc[0]["mostly_fallback"]) is (not share_ok)
