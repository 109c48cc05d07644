"""Holm and Benjamini-Hochberg adjustments, checked against hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from safescale.analysis.multiplicity import add_adjusted, adjust_pvalues


def test_holm_by_hand():
    # sorted p: 0.01, 0.02, 0.04 -> 3*0.01, max(., 2*0.02), max(., 1*0.04)
    got = adjust_pvalues([0.04, 0.01, 0.02], "holm")
    assert got == pytest.approx([0.04, 0.03, 0.04])


def test_bh_by_hand():
    # m=4: p*m/rank = 0.04, 0.04, 0.04, 0.2 -> step-up minimum from the top
    got = adjust_pvalues([0.01, 0.02, 0.03, 0.2], "fdr_bh")
    assert got == pytest.approx([0.04, 0.04, 0.04, 0.2])


def test_nan_tests_stay_nan_and_do_not_count():
    got = adjust_pvalues([0.01, np.nan, 0.02], "holm")
    assert np.isnan(got[1])
    assert got[[0, 2]] == pytest.approx([0.02, 0.02])


def test_families_are_adjusted_separately():
    table = pd.DataFrame({"fam": ["a", "a", "b"], "p": [0.01, 0.04, 0.01]})
    out = add_adjusted(table, family=["fam"])
    assert out.p_holm.tolist() == pytest.approx([0.02, 0.04, 0.01])
    assert (out.p_bh >= out.p).all() and (out.p_holm >= out.p_bh).all()
