"""Start-up objects are kept out of the collector's full passes (authflow.heap)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from authflow.heap import YOUNG_COLLECTION_THRESHOLD, freeze_startup_objects


@pytest.fixture
def unfrozen() -> Iterator[None]:
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_what_exists_at_start_up_is_frozen_and_later_cycles_are_still_collected(
    unfrozen: None,
) -> None:
    class Node:
        other: object = None

    before = gc.get_freeze_count()
    freeze_startup_objects()
    assert gc.get_freeze_count() > before
    assert gc.get_threshold()[0] == YOUNG_COLLECTION_THRESHOLD

    collected: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            collected.append(info["collected"])

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle made after start-up: garbage once dropped
    del a, b
    gc.callbacks.append(count)
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(count)
    assert sum(collected) >= 2
