"""The one condition order every table and figure uses."""

from __future__ import annotations

import numpy as np
import pandas as pd

from safescale.conditions import (
    ALL_CONDITIONS,
    CLEAN_EVIDENCE,
    CLOSED_BOOK,
    MAX_CONTEXT,
    REFERENCE_CONDITION,
    STANDARD_RAG,
    ordered_conditions,
)


def test_study_order_reference_first_unknown_sorted_after():
    values = [MAX_CONTEXT, "zeta", STANDARD_RAG, "alpha", CLOSED_BOOK, CLEAN_EVIDENCE, STANDARD_RAG]
    order = ordered_conditions(values)
    assert order == [CLOSED_BOOK, CLEAN_EVIDENCE, STANDARD_RAG, MAX_CONTEXT, "alpha", "zeta"]
    assert order[0] == REFERENCE_CONDITION


def test_missing_values_are_skipped_and_input_order_does_not_matter():
    values = pd.Series([STANDARD_RAG, None, np.nan, pd.NA, CLOSED_BOOK], dtype=object)
    assert ordered_conditions(values) == [CLOSED_BOOK, STANDARD_RAG]
    assert ordered_conditions(reversed(ALL_CONDITIONS)) == list(ALL_CONDITIONS)
