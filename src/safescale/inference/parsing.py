"""Rule-based extraction of an option letter from what small models really print.

Returns None (NULL, an abstention that counts as wrong) when no rule applies,
so parse failures are visible instead of silently guessed.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

_MARKUP = re.compile(r"[*_`#]")
_LEAD = re.compile(
    r"^\s*(?:the\s+)?(?:correct\s+|final\s+|best\s+)?(?:answer|option|choice)\s*(?:is|:|-)?\s*:?\s*",
    re.IGNORECASE,
)
# A letter standing alone: "B", "B.", "(B)", "B)", "B:", "[B]" optionally followed by text.
_START = re.compile(r"^\s*[\(\[]?([A-Ea-e])(?:[\)\]\.:,]|[ \t]*$|[ \t]*\n)")
_START_SPACE = re.compile(r"^\s*([A-E])\s+(.*)$", re.DOTALL)
_ANYWHERE = re.compile(
    r"(?:answer|option|choice)\s*(?:is|:|-)?\s*:?\s*[\(\[]?([A-E])\b(?![a-z])", re.IGNORECASE
)


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def parse_letter(raw: str | None, options: Mapping[str, str]) -> str | None:
    """The chosen letter among `options`, or None."""
    if not raw:
        return None
    text = _MARKUP.sub("", raw).strip()
    letters = set(options)
    stripped = _LEAD.sub("", text, count=1)
    for candidate in (stripped, text):
        m = _START.match(candidate)
        # A lower-case letter counts only when it stands alone ("a", "(c)").
        upper_or_alone = m and (m.group(1).isupper() or len(candidate.strip()) <= 3)
        if m and upper_or_alone and m.group(1).upper() in letters:
            return m.group(1).upper()
        m = _START_SPACE.match(candidate)
        if m and m.group(1) in letters:
            # "A Epidural haematoma" names option A; "A patient with..." does not.
            rest = _norm(m.group(2))
            option = _norm(options[m.group(1)])
            if rest and option and (rest.startswith(option) or option.startswith(rest)):
                return m.group(1)
    m = _ANYWHERE.search(text)
    if m and m.group(1).upper() in letters:
        return m.group(1).upper()
    said = _norm(stripped)
    if said:
        hits = [
            letter
            for letter, option in options.items()
            if _norm(option) and (said == _norm(option) or said.startswith(_norm(option) + " "))
        ]
        if len(hits) == 1:
            return hits[0]
    return None


_DECIDED = re.compile(r"^\s*[\(\[]?([A-E])[\)\]\.:,\n]")


def letter_is_final(text: str, letters: Collection[str]) -> bool:
    """True once no continuation of `text` can change `parse_letter`'s answer.

    That holds when the output opens with an upper-case letter of the
    question's `letters` (its options) closed by punctuation or a newline: the
    first rule of `parse_letter` fires on every continuation of that prefix.
    A letter outside the options ("E." on a four-option question) decides
    nothing: "E. The answer is B" parses as B, so decoding goes on.
    """
    decided = _DECIDED.match(_MARKUP.sub("", text))
    return decided is not None and decided.group(1) in letters


# A first token that spells a letter: the letter, after an optional space and
# an optional opening bracket ("B", " B", "(B", " (B", "[B", " [B").
_LETTER_TOKEN = re.compile(r"^ ?[\(\[]?([A-E])$")
# Raw SentencePiece / byte-level BPE spellings of a leading space.
_SPACE_PIECES = ("\u2581", "\u0120")


def letter_of_token(text: str, letters: Collection[str]) -> str | None:
    """The option letter a single first token spells, else None.

    The one rule for letter probabilities, in-process and from a server's
    logprobs: counting only "B" and " B" would miss the mass of "(B" and show
    a model that rarely answers with a bare letter as confident.
    """
    for piece in _SPACE_PIECES:
        if text.startswith(piece):
            text = " " + text[len(piece) :]
            break
    spelled = _LETTER_TOKEN.match(text)
    return spelled.group(1) if spelled and spelled.group(1) in letters else None
