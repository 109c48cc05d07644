"""Agentic RAG: plan parsing and the plan-retrieve-stop loop with fake model and search."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from safescale.data.question import OptionLabels, Question
from safescale.prompting.agentic import (
    PLAN_INSTRUCTION,
    AgentSettings,
    agent_transcript,
    parse_plan,
    plan_prompt,
)

Q = Question(
    "q7",
    "Which first imaging test suits a suspected pulmonary embolism?",
    {"A": "Non-contrast CT of the head", "B": "CT pulmonary angiography", "C": "Knee MRI"},
    "B",
    {k: OptionLabels() for k in "ABC"},
)
SETTINGS = AgentSettings(
    max_rounds=3, queries_per_round=2, top_k_per_query=3, final_k=5, plan_max_tokens=48
)


class ScriptedModel:
    """A fake `generate`: returns the scripted plans in turn (the last one repeats)."""

    def __init__(self, *plans: str):
        self.plans = list(plans)
        self.calls: list[tuple[list[dict[str, str]], int]] = []

    def __call__(self, messages: list[dict[str, str]], max_tokens: int) -> str:
        self.calls.append((messages, max_tokens))
        return self.plans[min(len(self.calls), len(self.plans)) - 1]


class RecordingSearch:
    """A fake `search`: looks hits up in a table or a function, and records every call."""

    def __init__(self, hits: dict[str, list[str]] | Callable[[str], list[str]]):
        self.hits = hits
        self.calls: list[tuple[str, int]] = []

    def __call__(self, query: str, k: int) -> list[tuple[str, float]]:
        self.calls.append((query, k))
        ids = self.hits(query) if callable(self.hits) else self.hits[query]
        return [(cid, 1.0 / rank) for rank, cid in enumerate(ids[:k], 1)]


def title_of(cid: str) -> str:
    return f"Title of {cid}"


def fresh_ids_each_call() -> Callable[[str], list[str]]:
    counter = itertools.count(1)

    def hits(query: str) -> list[str]:
        n = next(counter)
        return [f"r{n}-{j}" for j in (1, 2, 3)]

    return hits


# --------------------------------------------------------------------------- parse_plan


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\n\t",
        PLAN_INSTRUCTION.format(n=2),
        "Answer: B",
        "answer: b\nANSWER: B",
        "B",
        "CT\nMRI\nultrasound",
        "1. CT\n2. embolism\n- MRI scan",
        "Search queries:",
        "Question: Which first imaging test?\nOptions:",
        "- (none yet)",
        "\n".join(["word"] * 5),
    ],
)
def test_garbage_plans_yield_no_queries(text):
    queries, done = parse_plan(text, 3)
    assert queries == []
    assert done is False


def test_good_plan_with_bullets_and_numbering_is_cleaned():
    text = (
        "1. CT pulmonary angiography for embolism\n"
        "2) D-dimer before CT angiography\n"
        '- "Wells score pulmonary embolism"\n'
        "* ventilation perfusion scan in pregnancy\n"
        "• `lower limb compression ultrasound`\n"
        "Query 6: chest radiograph findings in embolism\n"
        "  query: echocardiography right heart strain  \n"
    )
    queries, done = parse_plan(text, 10)
    assert queries == [
        "CT pulmonary angiography for embolism",
        "D-dimer before CT angiography",
        "Wells score pulmonary embolism",
        "ventilation perfusion scan in pregnancy",
        "lower limb compression ultrasound",
        "chest radiograph findings in embolism",
        "echocardiography right heart strain",
    ]
    assert done is False


def test_plan_queries_are_deduplicated_and_capped():
    text = (
        "1. CT angiography for embolism\n"
        "2. ct ANGIOGRAPHY for embolism\n"
        "3. - CT angiography for embolism\n"
        "4. Wells score for embolism\n"
        "5. D-dimer in pregnancy testing\n"
    )
    assert parse_plan(text, 10)[0] == [
        "CT angiography for embolism",
        "- CT angiography for embolism",  # only one prefix is stripped
        "Wells score for embolism",
        "D-dimer in pregnancy testing",
    ]
    assert parse_plan(text.replace("3. - ", "3. "), 2)[0] == [
        "CT angiography for embolism",
        "Wells score for embolism",
    ]
    assert parse_plan(text, 1)[0] == ["CT angiography for embolism"]


def test_plan_query_length_bounds_are_3_to_30_words():
    assert parse_plan("two words", 5)[0] == []
    assert parse_plan("three words here", 5)[0] == ["three words here"]
    thirty = " ".join(f"w{i}" for i in range(30))
    assert parse_plan(thirty, 5)[0] == [thirty]
    assert parse_plan(thirty + " w30", 5)[0] == []


@pytest.mark.parametrize("text", ["DONE", "done", "Done.", "  **DONE**  ", "DONE!\n"])
def test_done_is_detected(text):
    assert parse_plan(text, 2) == ([], True)


@pytest.mark.parametrize("text", ["I am not done", "Donepezil for dementia imaging", "ONE"])
def test_done_needs_the_word_done_first(text):
    assert parse_plan(text, 2)[1] is False


def test_queries_override_done():
    assert parse_plan("DONE\n1. CT angiography for embolism", 2) == (
        ["CT angiography for embolism"],
        False,
    )


def test_done_with_an_explanation_on_the_same_line_is_done():
    assert parse_plan("DONE. The notes already answer the question.", 2) == ([], True)


@pytest.mark.parametrize(
    "echo",
    [
        pytest.param("Notes so far:", id="notes-header"),
        pytest.param(plan_prompt(Q, ["Pulmonary embolism imaging"], 2)[1]["content"], id="user"),
        pytest.param(PLAN_INSTRUCTION.format(n=3).replace(". ", ".\n"), id="instruction-lines"),
    ],
)
def test_echoed_plan_prompt_yields_no_queries(echo):
    # agent_transcript passes its notes and the stem as `echo`
    assert parse_plan(echo, 2, echo=["Pulmonary embolism imaging", Q.question]) == ([], False)


# --------------------------------------------------------------------------- agent_transcript


@pytest.mark.parametrize("garbage", ["", "Answer: B", "B\nC", PLAN_INSTRUCTION.format(n=2)])
def test_garbage_plans_fall_back_to_the_question_stem(garbage):
    model = ScriptedModel(garbage)
    search = RecordingSearch(lambda query: ["c1", "c2", "c3", "c4"])
    out = agent_transcript(Q, model, search, title_of, SETTINGS)

    # round 2 repeats the fallback query, finds nothing new, and stops
    assert search.calls == [(Q.question, 3), (Q.question, 3)]
    assert out["question_id"] == "q7"
    assert out["n_rounds"] == 2 == len(out["rounds"])
    assert out["n_fallbacks"] == 2
    assert out["n_model_queries"] == 0
    first, second = out["rounds"]
    assert first == {
        "round": 1,
        "plan": garbage,
        "fallback": True,
        "queries": [Q.question],
        "retrieved": [{"query": Q.question, "chunk_ids": ["c1", "c2", "c3"]}],
        "new_chunk_ids": ["c1", "c2", "c3"],
        "decision": "continue",
    }
    assert second["fallback"] is True and second["queries"] == [Q.question]
    assert second["retrieved"] == first["retrieved"]
    assert second["new_chunk_ids"] == []
    assert second["decision"] == "stop: no new evidence"
    assert out["final_chunk_ids"] == ["c1", "c2", "c3"]


def test_model_is_asked_with_the_plan_prompt_and_sees_the_notes():
    model = ScriptedModel("")
    search = RecordingSearch(lambda query: ["c1", "c2"])
    agent_transcript(Q, model, search, title_of, SETTINGS)
    (first, n1), (second, n2) = model.calls
    assert n1 == n2 == 48
    assert first == plan_prompt(Q, [], 2)
    assert "Write up to 2 short search queries" in first[0]["content"]
    assert "- (none yet)" in first[1]["content"]
    assert "- Title of c1\n- Title of c2" in second[1]["content"]


def test_agent_stops_at_the_round_limit_and_fuses_all_rankings():
    search = RecordingSearch(fresh_ids_each_call())
    out = agent_transcript(Q, ScriptedModel("nonsense"), search, title_of, SETTINGS)
    assert out["n_rounds"] == 3
    assert [r["decision"] for r in out["rounds"]] == ["continue", "continue", "stop: round limit"]
    assert out["n_fallbacks"] == 3
    assert [r["new_chunk_ids"] for r in out["rounds"]] == [
        ["r1-1", "r1-2", "r1-3"],
        ["r2-1", "r2-2", "r2-3"],
        ["r3-1", "r3-2", "r3-3"],
    ]
    # rrf: every rank-1 id scores 1/61, every rank-2 id 1/62; ties by id; cut at final_k
    assert out["final_chunk_ids"] == ["r1-1", "r2-1", "r3-1", "r1-2", "r2-2"]


def test_one_round_agent_stops_with_new_evidence():
    settings = AgentSettings(max_rounds=1, final_k=2)
    out = agent_transcript(
        Q, ScriptedModel(""), RecordingSearch(fresh_ids_each_call()), title_of, settings
    )
    assert out["n_rounds"] == 1
    assert out["rounds"][0]["decision"] == "stop: round limit"
    assert out["final_chunk_ids"] == ["r1-1", "r1-2"]


def test_useful_queries_are_searched_then_done_stops():
    plan = (
        "1. CT angiography for embolism\n"
        "2. Wells score before imaging\n"
        "3. a third query over the limit"
    )
    model = ScriptedModel(plan, "DONE")
    search = RecordingSearch(
        {
            "CT angiography for embolism": ["a", "b", "c"],
            "Wells score before imaging": ["b", "d", "e"],
        }
    )
    out = agent_transcript(Q, model, search, title_of, SETTINGS)
    assert search.calls == [("CT angiography for embolism", 3), ("Wells score before imaging", 3)]
    assert out["n_model_queries"] == 2
    assert out["n_fallbacks"] == 0
    assert out["n_rounds"] == 2
    first, second = out["rounds"]
    assert first["fallback"] is False
    assert first["queries"] == ["CT angiography for embolism", "Wells score before imaging"]
    assert [r["chunk_ids"] for r in first["retrieved"]] == [["a", "b", "c"], ["b", "d", "e"]]
    assert first["decision"] == "continue"
    assert second == {"round": 2, "plan": "DONE", "queries": [], "decision": "stop: DONE"}
    # notes for round 2 list each new chunk's title once
    notes = model.calls[1][0][1]["content"]
    assert notes.count("- Title of b") == 1
    assert all(f"- Title of {c}" in notes for c in "abcde")
    # rrf: b = 1/61 + 1/62, a = 1/61, d = 1/62, c = e = 1/63 (ties by id)
    assert out["final_chunk_ids"] == ["b", "a", "d", "c", "e"]
    small = agent_transcript(
        Q, ScriptedModel(plan, "DONE"), search, title_of, AgentSettings(final_k=2)
    )
    assert small["final_chunk_ids"] == ["b", "a"]


def test_done_in_the_first_round_still_retrieves_once():
    search = RecordingSearch(lambda query: ["x1", "x2"])
    out = agent_transcript(Q, ScriptedModel("DONE"), search, title_of, SETTINGS)
    assert search.calls == [(Q.question, 3)]
    assert [r["decision"] for r in out["rounds"]] == ["continue", "stop: DONE"]
    assert out["n_fallbacks"] == 1 and out["n_model_queries"] == 0
    assert out["final_chunk_ids"] == ["x1", "x2"]


def test_repeated_useful_queries_stop_when_nothing_new_is_found():
    plan = "- CT angiography for embolism\n- Wells score before imaging"
    search = RecordingSearch(lambda query: ["a", "b"] if query.startswith("CT") else ["c"])
    out = agent_transcript(Q, ScriptedModel(plan), search, title_of, SETTINGS)
    assert [r["decision"] for r in out["rounds"]] == ["continue", "stop: no new evidence"]
    assert out["n_model_queries"] == 4
    assert out["n_fallbacks"] == 0
    assert len(search.calls) == 4
    # rrf over [a, b], [c], [a, b], [c]: a = c = 2/61, b = 2/62
    assert out["final_chunk_ids"] == ["a", "c", "b"]


def test_new_chunk_ids_have_no_duplicates_within_a_round():
    plan = "1. CT angiography for embolism\n2. Wells score before imaging"
    search = RecordingSearch(
        {
            "CT angiography for embolism": ["a", "b", "c"],
            "Wells score before imaging": ["b", "d", "e"],
        }
    )
    out = agent_transcript(Q, ScriptedModel(plan, "DONE"), search, title_of, SETTINGS)
    assert out["rounds"][0]["new_chunk_ids"] == ["a", "b", "c", "d", "e"]
