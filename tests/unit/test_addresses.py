"""The one stored form of an address (authflow/addresses.py)."""

from __future__ import annotations

import pytest

from authflow.addresses import InvalidAddress, canonical_email


def test_case_width_and_surrounding_spaces_do_not_make_another_address() -> None:
    assert canonical_email("  Alice@Example.COM ") == "alice@example.com"
    assert canonical_email("\uff41lice@example.com") == "alice@example.com"  # full-width a


@pytest.mark.parametrize(
    "value", ["al ice@example.com", "alice@example.com\t", "alice@exa\x00mple.com", "   "]
)
def test_spaces_inside_and_control_characters_are_refused(value: str) -> None:
    with pytest.raises(InvalidAddress):
        canonical_email(value)
