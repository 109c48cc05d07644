"""The agent's reply protocol: the parser's accepted variants and the early stop."""

from __future__ import annotations

import pytest

from safescale.prompting.agent_protocol import (
    INSTRUCTION,
    example_messages,
    opening_messages,
    parse_reply,
    reply_complete,
)

STEM = "Which first imaging test suits a suspected pulmonary embolism?"


@pytest.mark.parametrize(
    "text",
    [
        "QUERY: CT angiography embolism\nQUERY: Wells score",
        "query: CT angiography embolism\nquery: Wells score.",
        "Query 1: CT angiography embolism\nQuery 2: Wells score",
        "- QUERY: CT angiography embolism\n- QUERY: Wells score",
        "**QUERY:** CT angiography embolism\n**QUERY:** Wells score",
        '1. **Query**: `CT angiography embolism`\n2. Query: "Wells score";',
        "Queries:\n- CT angiography embolism\n- Wells score",
        "queries:\n1. CT angiography embolism\n2. Wells score\n\nThat is all.",
        "Search query: CT angiography embolism\nSEARCH QUERY - Wells score!",
        "QUERY: CT angiography embolism\nQUERY: ct angiography embolism\nQUERY: Wells score",
    ],
)
def test_query_variants(text):
    reply = parse_reply(text, 2)
    assert reply.queries == ("CT angiography embolism", "Wells score")
    assert reply.usable and not reply.enough


def test_queries_are_capped_at_the_limit():
    text = "QUERY: one thing\nQUERY: two things\nQUERY: three things"
    assert parse_reply(text, 2).queries == ("one thing", "two things")


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("ENOUGH: 2, 5", (2, 5)),
        ("enough: 2 5", (2, 5)),
        ("**ENOUGH**: [2], [5].", (2, 5)),
        ("- Enough: passages 2 and 5", (2, 5)),
        ("ENOUGH 3", (3,)),
        ("ENOUGH: 3, 3, 1", (3, 1)),
        ("ENOUGH", ()),
        ("Enough.", ()),
        ("ENOUGH: none of them", ()),
        ("Let me look.\nENOUGH: 4", (4,)),
    ],
)
def test_enough_variants(text, numbers):
    reply = parse_reply(text, 2)
    assert reply.enough and reply.numbers == numbers and reply.usable


def test_queries_before_enough_win_and_enough_before_queries_wins():
    after = parse_reply("QUERY: Wells score first\nENOUGH: 1", 2)
    assert not after.enough and after.queries == ("Wells score first",)
    before = parse_reply("ENOUGH: 1\nQUERY: Wells score first", 2)
    assert before.enough and before.queries == ()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  \n\n",
        "B",
        "The answer is B.",
        "CT pulmonary angiography for embolism",  # a query without the QUERY: mark
        "Enoughness of evidence is unclear",
        "QUERY: <keywords>",
        "QUERY: ...",
        "QUERY:",
        "Queries:",
        INSTRUCTION.format(n=2),  # its lines are placeholders or no protocol line
    ],
)
def test_unusable_replies(text):
    reply = parse_reply(text, 2)
    assert not reply.usable and not reply.enough and reply.queries == ()


def test_rejected_query_lines_are_kept_for_the_transcript():
    reply = parse_reply(f"QUERY: {STEM}\nQUERY: <keywords>\nQUERY: " + "w " * 31, 2, echo=[STEM])
    assert reply.queries == () and len(reply.rejected) == 3
    assert reply.rejected[0] == STEM.rstrip("?")


@pytest.mark.parametrize(
    ("text", "done"),
    [
        ("ENOUGH: 2", False),  # the line may go on ("2, 5")
        ("ENOUGH: 2\n", True),
        ("QUERY: a b\n", False),
        ("QUERY: a b\nQUERY: c", False),
        ("QUERY: a b\nQUERY: c d\n", True),
        ("QUERY: a b\n\n", True),  # a blank line after a protocol line
        ("\n\nSure.\n\n", False),  # blank lines before any protocol line
        ("Queries:\n- a b\n", False),
        ("Queries:\n- a b\n- c d\n", True),
    ],
)
def test_reply_complete(text, done):
    assert reply_complete(text, 2) is done


def test_example_is_outside_medicine_and_follows_the_protocol():
    msgs = example_messages(2)
    text = " ".join(m["content"] for m in msgs).lower()
    assert "bronze" in text and not any(w in text for w in ("patient", "imaging", "ct ", "mri"))
    replies = [m["content"] for m in msgs if m["role"] == "assistant"]
    assert parse_reply(replies[0], 2).queries and parse_reply(replies[1], 2).numbers == (4,)
    assert example_messages(1)[1]["content"].count("QUERY:") == 1
    assert opening_messages(2)[0]["content"] == INSTRUCTION.format(n=2)
