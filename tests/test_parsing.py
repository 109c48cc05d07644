"""What small models really print -> a letter, or NULL."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safescale.inference.parsing import letter_is_final, parse_letter
from safescale.inference.predict import parse_summary

OPTIONS = {
    "A": "Epidural hematoma",
    "B": "Subdural hematoma",
    "C": "Subarachnoid haemorrhage",
    "D": "Cerebral contusion",
}


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("B", "B"),
        (" B", "B"),
        ("B.", "B"),
        ("(B)", "B"),
        ("**B**", "B"),
        ("Answer: B", "B"),
        ("The answer is B", "B"),
        ("The correct answer is (C).", "C"),
        ("A. Epidural hematoma", "A"),
        ("Epidural hematoma", "A"),
        ("Subdural hematoma.", "B"),
        ("B) Subdural", "B"),
        ("answer: c", "C"),
        ("D\n\nExplanation: ...", "D"),
        ("A Epidural hematoma", "A"),
        ("Option C", "C"),
        ("[D]", "D"),
        ("a", "A"),
        # NULL cases: prose that starts with "A", letters outside the options, nothing at all.
        ("A patient with this finding needs", None),
        ("E", None),
        ("I am not sure", None),
        ("", None),
        (None, None),
        ("Hematoma", None),
    ],
)
def test_parse(raw, expected):
    assert parse_letter(raw, OPTIONS) == expected


@pytest.mark.parametrize("prefix", ["B.", "(C)", "A. Epid", "D\n", "**B**."])
def test_final_prefixes_parse_the_same_whatever_follows(prefix):
    assert letter_is_final(prefix, OPTIONS)
    letter = parse_letter(prefix, OPTIONS)
    for tail in ["", " more text", " The answer is A", "\nC"]:
        assert parse_letter(prefix + tail, OPTIONS) == letter


@pytest.mark.parametrize("prefix", ["B", "A", "A patient", "The", "**B**", "E.", "(E)", "E\n"])
def test_undecided_prefixes(prefix):
    assert not letter_is_final(prefix, OPTIONS)


def test_a_letter_outside_the_options_does_not_stop_decoding():
    """The audit's case: a four-option sample that opens "E." answers later."""
    assert not letter_is_final("E.", OPTIONS)
    assert parse_letter("E. The answer is B", OPTIONS) == "B"
    five = {**OPTIONS, "E": "Venous sinus thrombosis"}
    assert letter_is_final("E.", five) and parse_letter("E. The answer is B", five) == "E"


# Pieces of what small models print, as tokens: letters in and outside the
# options, brackets, punctuation, markup, answer phrases, option texts, noise.
_PIECES = [
    *"ABCDEabcde",
    *".,:;)([]*_`#-",
    " ",
    "\n",
    "\t",
    " A",
    " B",
    " E",
    "The answer is ",
    "answer",
    "Answer: ",
    "The correct answer is",
    "option",
    " choice",
    "Epidural",
    " hematoma",
    "Subdural hematoma",
    "Venous sinus thrombosis",
    "patient",
    " not sure",
]
_TOKENS = st.lists(
    st.one_of(st.sampled_from(_PIECES), st.text(max_size=3)), min_size=1, max_size=12
)
_FOUR = OPTIONS
_FIVE = {**OPTIONS, "E": "Venous sinus thrombosis"}


def _early_stopped(tokens: list[str], options: dict[str, str]) -> str:
    """What the engine keeps: tokens up to the first prefix `letter_is_final` accepts."""
    for i in range(1, len(tokens) + 1):
        prefix = "".join(tokens[:i])
        if letter_is_final(prefix, options):
            return prefix
    return "".join(tokens)


@pytest.mark.parametrize("options", [_FOUR, _FIVE], ids=["4-options", "5-options"])
@settings(max_examples=800, deadline=None)
@given(tokens=_TOKENS)
def test_early_stopped_and_fully_decoded_samples_parse_the_same(options, tokens):
    full = "".join(tokens)
    assert parse_letter(_early_stopped(tokens, options), options) == parse_letter(full, options)


@pytest.mark.parametrize("options", [_FOUR, _FIVE], ids=["4-options", "5-options"])
@settings(max_examples=400, deadline=None)
@given(prefix=_TOKENS, tail=_TOKENS)
def test_a_final_prefix_parses_the_same_whatever_follows(options, prefix, tail):
    head = "".join(prefix)
    if letter_is_final(head, options):
        assert parse_letter(head + "".join(tail), options) == parse_letter(head, options)


def _answered(mass: float | None) -> dict:
    return {
        "status": "ok",
        "greedy": {"letter": "A"},
        "samples": [{"letter": "A"}, {"letter": None}],
        "letter_mass": mass,
    }


def test_parse_summary_reports_letter_mass_and_flags_low_mass_cells():
    skipped = {"status": "skipped", "greedy": None, "samples": [], "letter_mass": None}
    confident = parse_summary([_answered(0.9), _answered(0.6), _answered(0.1), skipped])
    assert (confident["letter_mass_median"], confident["prob_reliable"]) == (0.6, True)
    scattered = parse_summary([_answered(0.02), _answered(0.9), _answered(0.3)])
    assert (scattered["letter_mass_median"], scattered["prob_reliable"]) == (0.3, False)
    no_logits = parse_summary([_answered(None)])
    assert no_logits["prob_reliable"] is False and no_logits["letter_mass_median"] != 0
