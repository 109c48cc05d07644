"""What small models really print -> a letter, or NULL."""

from __future__ import annotations

import pytest

from safescale.inference.parsing import letter_is_final, parse_letter

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
    assert letter_is_final(prefix)
    letter = parse_letter(prefix, OPTIONS)
    for tail in ["", " more text", " The answer is A", "\nC"]:
        assert parse_letter(prefix + tail, OPTIONS) == letter


@pytest.mark.parametrize("prefix", ["B", "A", "A patient", "The", "**B**"])
def test_undecided_prefixes(prefix):
    assert not letter_is_final(prefix)
