"""One patch marker per new run for every earlier workflow change.

Each ``workflow.patched(id)`` a new run calls records a marker event and an upsert of
``TemporalChangeVersion`` (a visibility write on the server), in every new run, for as
long as the patch stays in the code.  A registration called two (first code from the
input, one email pipeline) and a third when its email was retried.

Runs started since ``CURRENT`` take the path of every patch listed in ``FOLDED`` on that
one marker: ``since(patch)`` asks ``CURRENT`` first.  A history recorded before it has
no ``CURRENT`` marker, so on replay ``since`` falls through to the patch's own marker
and the run takes the path it took.  (A run begun before it that goes on live records
``CURRENT`` at its next ``since``: live, ``patched`` is true either way.)  The work per
registration this saves is counted in docs/benchmarks.md ("Work per registration").

A new ``CURRENT`` keeps the markers before it in ``EARLIER``: a run recorded under one
of them takes that one's paths and no later one (its ``patched(CURRENT)`` was false on
replay, and the SDK keeps that answer for the rest of the run).

Imports: the SDK only (workflow code).
"""

from __future__ import annotations

from temporalio import workflow

# Runs started since this patch send an email's first attempt as a local activity
# (``workflows.emails``), and take every path of the markers below.
CURRENT = "local-first-send"

# Earlier ``CURRENT`` markers, newest first: a run recorded under one of them replays
# every path it stood for, and no later one.
#
# "lean-code-flows": runs also leave the delivery-state search attribute at the email's
# own state once their code is used (no "used" upsert: one visibility write fewer); the
# run's result ("verified", "reset") says the code was used.
LEAN_CODE_FLOWS = "lean-code-flows"
EARLIER = (LEAN_CODE_FLOWS,)

# The patches ``CURRENT`` stands for (their ids, as recorded in older histories).
FIRST_CODE_FROM_INPUT = "first-code-from-input"
ONLY_CHANGED_ATTRIBUTES = "upsert-only-changed-search-attributes"
ONE_EMAIL_PIPELINE = "one-email-pipeline"
SHOWS_RETRYING = "shows-retrying"
FOLDED = frozenset(
    {FIRST_CODE_FROM_INPUT, ONLY_CHANGED_ATTRIBUTES, ONE_EMAIL_PIPELINE, SHOWS_RETRYING}
)


def current() -> bool:
    """Whether this run started since ``CURRENT`` (records its marker in a new run)."""
    return workflow.patched(CURRENT)


def since_lean() -> bool:
    """Whether this run leaves out the "used" upsert: since ``LEAN_CODE_FLOWS``, the
    current marker included (a new run records only ``CURRENT``)."""
    return current() or any(workflow.patched(marker) for marker in EARLIER)


def since(patch: str) -> bool:
    """Whether this run takes ``patch``'s path: new runs on ``CURRENT``'s one marker,
    older ones as their history recorded it."""
    if patch not in FOLDED:
        raise ValueError(f"{patch} is not folded into {CURRENT}")
    return since_lean() or workflow.patched(patch)
