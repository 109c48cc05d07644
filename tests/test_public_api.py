"""The package's public API: every name in __all__ resolves to the object it names."""

from __future__ import annotations

import importlib

import pytest

import safescale


@pytest.mark.parametrize("name", safescale.__all__)
def test_public_name_resolves_to_its_module(name):
    module = importlib.import_module(safescale._EXPORTS[name])
    assert getattr(safescale, name) is getattr(module, name)


def test_unknown_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = safescale.no_such_name


def test_ordered_conditions_study_order_then_unknown_sorted():
    from safescale.conditions import ordered_conditions

    got = ordered_conditions(["max_context", "zeta", None, "closed_book", "alpha", "max_context"])
    assert got == ["closed_book", "max_context", "alpha", "zeta"]
