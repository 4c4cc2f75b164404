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

Imports: the SDK only (workflow code).
"""

from __future__ import annotations

from temporalio import workflow

# Runs started since this patch also leave the delivery-state search attribute at the
# email's own state once their code is used (no "used" upsert: one visibility write
# fewer); the run's result ("verified", "reset") says the code was used.
CURRENT = "lean-code-flows"

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


def since(patch: str) -> bool:
    """Whether this run takes ``patch``'s path: new runs on ``CURRENT``'s one marker,
    older ones as their history recorded it."""
    if patch not in FOLDED:
        raise ValueError(f"{patch} is not folded into {CURRENT}")
    return current() or workflow.patched(patch)
