"""The agent's reply protocol: its instruction, one worked example, and the parser.

Small instruct models follow a constrained format when they are shown it once.
Each round the agent replies either `ENOUGH: <passage numbers>` (the passages it
read suffice; the numbers name the ones to answer from) or up to n lines
`QUERY: <keywords>` (what to search next). The worked example is about bronze,
outside medicine, so it teaches the format without hinting at any answer. The
parser accepts the ways small models usually garble the format (case, markdown
bullets and bold, numbering, "Query 1:", a "Queries:" header over a list,
quotes and trailing punctuation); anything else is not a usable reply, and the
loop counts it as such.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

INSTRUCTION = (
    "You gather evidence for a multiple-choice question. Read the numbered passages "
    "and check whether one of them states which option is correct. Then reply in one "
    "of two ways and write nothing else.\n"
    "If no passage states it, write up to {n} lines, each a short search query for "
    "the missing fact:\n"
    "QUERY: <keywords>\n"
    "If some passages state it, write one line naming only those passages:\n"
    "ENOUGH: <passage numbers>"
)
ASK = "Reply with up to {n} QUERY: lines, or with ENOUGH: and the passages that state the answer."
ASK_LAST = "Last round, no more searches: reply ENOUGH: and the numbers of the passages to use."
NO_NEW = "(Your queries found no new passages.)"
NO_ROOM = "(No room to show more passages.)"
UNUSABLE = "(Your reply had no QUERY: or ENOUGH: line. More passages for the question:)"
MAX_QUERY_WORDS = 30

_EXAMPLE_QUERIES = ("bronze alloy composition", "bronze copper tin ratio", "bronze history")


def example_messages(n_queries: int) -> list[dict[str, str]]:
    """The worked example as two finished rounds: queries first, then ENOUGH."""
    first = (
        "Question: Which metal makes up most of bronze?\n"
        "Options:\nA. Iron\nB. Copper\nC. Aluminium\n\n"
        "Passages:\n"
        "[1] Brass: Brass is an alloy of copper and zinc, used for instruments and fittings.\n"
        "[2] Iron Age: The Iron Age followed the Bronze Age once smelting iron was common.\n\n"
        + ASK.format(n=n_queries)
    )
    second = (
        "New passages:\n"
        "[3] Tin: Tin is a soft metal mined mostly as the mineral cassiterite.\n"
        "[4] Bronze: Bronze is an alloy of about 88% copper and 12% tin.\n\n"
        + ASK.format(n=n_queries)
    )
    queries = "\n".join(f"QUERY: {x}" for x in _EXAMPLE_QUERIES[: max(1, n_queries)])
    return [
        {"role": "user", "content": first},
        {"role": "assistant", "content": queries},
        {"role": "user", "content": second},
        {"role": "assistant", "content": "ENOUGH: 4"},
    ]


def opening_messages(n_queries: int) -> list[dict[str, str]]:
    """System instruction and worked example: every conversation starts with these."""
    return [
        {"role": "system", "content": INSTRUCTION.format(n=n_queries)},
        *example_messages(n_queries),
    ]


@dataclass(frozen=True)
class Reply:
    """A parsed reply. `usable`: it decided (ENOUGH) or gave at least one usable query."""

    enough: bool
    numbers: tuple[int, ...]  # passage numbers named on the ENOUGH line, in order
    queries: tuple[str, ...]  # usable queries, at most the limit
    rejected: tuple[str, ...]  # query lines that were not usable (echo, placeholder, length)

    @property
    def usable(self) -> bool:
        return self.enough or bool(self.queries)


_LIST_MARK = re.compile(r"^(?:>\s*)?(?:[-*•+]\s+|\(?\d{1,2}[.):]\s+|#+\s*)")
_ENOUGH = re.compile(r"^enough\b\s*[:.\-–—]?\s*(.*)$", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"<[^>]*>")  # an echo of the instruction's "<keywords>"
_QUERY = re.compile(
    r"^(?:search\s+)?quer(?:y|ies)\s*(?:#?\d{1,2})?\s*[:.)\-–—]\s*(.*)$", re.IGNORECASE
)


def _clean(line: str) -> tuple[str, bool]:
    """A line without markdown emphasis and list marks; and whether it had a list mark."""
    text = line.replace("**", "").replace("__", "").replace("`", "").strip()
    marked = bool(_LIST_MARK.match(text))
    text = _LIST_MARK.sub("", text).strip().strip("*_").strip()
    return text, marked


def _scan(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(kind, payload) per line: kind is enough | query | blank | other.

    A bare "Queries:" header makes the list lines under it queries until a blank
    line; the header itself reads as `header`.
    """
    in_list = False
    for line in lines:
        text, marked = _clean(line)
        if not text:
            in_list = False
            yield "blank", ""
        elif (m := _ENOUGH.match(text)) and not _PLACEHOLDER.search(m.group(1)):
            yield "enough", m.group(1)
        elif m := _QUERY.match(text):
            payload = m.group(1).strip()
            in_list = not payload
            yield ("header", "") if in_list else ("query", payload)
        elif in_list and (marked or not text.endswith(":")):
            yield "query", text
        else:
            yield "other", text


def _clean_query(text: str) -> str:
    text = text.strip().strip("\"'“”‘’").strip()
    return re.sub(r"[\s.,;:!?]+$", "", text).strip("\"'“”‘’ ")


def _query_problem(query: str, echo: set[str]) -> str | None:
    lowered = query.lower()
    if not re.search(r"[a-z]{2}", lowered):
        return "no words"
    if _PLACEHOLDER.search(query) or lowered in ("keywords", "search query"):
        return "placeholder"
    if len(query.split()) > MAX_QUERY_WORDS:
        return "too long"
    if lowered in echo:
        return "echo"
    return None


def parse_reply(text: str, limit: int, echo: Iterable[str] = ()) -> Reply:
    """The decision in a reply: ENOUGH unless usable queries come before it.

    `echo` (the question stem) is no query of the model's own: such lines are rejected.
    """
    echoed = {_clean_query(e).lower() for e in echo}
    queries: list[str] = []
    rejected: list[str] = []
    for kind, payload in _scan(text.splitlines()):
        if kind == "enough" and not queries:
            numbers = tuple(dict.fromkeys(int(n) for n in re.findall(r"\d+", payload)))
            return Reply(True, numbers, (), ())
        if kind == "query":
            query = _clean_query(payload)
            if _query_problem(query, echoed):
                rejected.append(query)
            elif query.lower() not in (q.lower() for q in queries):
                queries.append(query)
    return Reply(False, (), tuple(queries[:limit]), tuple(rejected))


def reply_complete(text: str, limit: int) -> bool:
    """Whether decoding may stop: an ENOUGH line or `limit` QUERY lines are finished
    (a newline after them), or a blank line follows a protocol line.

    Only finished lines count, so the decision already made is never cut in half;
    what the model would have written after it is not decoded (decode time is the
    agent's main cost) and not read.
    """
    finished = text.split("\n")[:-1]
    n_queries = 0
    started = False
    for kind, _ in _scan(finished):
        if kind == "enough":
            return True
        if kind == "query":
            n_queries += 1
            if n_queries >= limit:
                return True
        if kind in ("query", "header"):
            started = True
        elif kind == "blank" and started:
            return True
    return False
