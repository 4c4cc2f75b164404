"""The delivery state a workflow shows in the Temporal Web UI (a search attribute)."""

from __future__ import annotations

from temporalio import workflow

from workflows import search_attributes as sa


def set_delivery_state(state: str) -> None:
    """Upsert only a change: the starter set "pending", and every upsert costs the
    Temporal server a visibility write (docs/benchmarks.md)."""
    if workflow.info().typed_search_attributes.get(sa.DELIVERY_STATE) != state:
        workflow.upsert_search_attributes([sa.DELIVERY_STATE.value_set(state)])
