"""Keep the objects every long-running process makes at start-up out of the garbage
collector's full passes.

CPython's collector now and then walks *every* tracked object (a generation-2 pass,
triggered by the allocations of a burst).  After start-up an API or worker process holds
hundreds of thousands of objects it never frees (modules, routes, schemas, SQLAlchemy
metadata, workflow and activity definitions), and a full pass over them held the event
loop for 50 to 180 ms in a registration spike: ``/healthz`` waited, and a send whose slot
had come waited too (docs/benchmarks.md, round 5).  ``gc.freeze()`` moves them to a
generation the collector never examines; cycles made afterwards are still collected.
"""

from __future__ import annotations

import gc

# Allocations (net of frees) between two collections of the youngest generation: the
# default 700 makes a spike's requests and workflow tasks trigger a full pass every
# ~70,000, each walking every object made since start-up (a worker's 500 cached
# workflow runs: 100 to 200 ms).  Ten times fewer full passes; a young pass over at most
# this many objects stays well under a millisecond.
YOUNG_COLLECTION_THRESHOLD = 7_000


def freeze_startup_objects() -> None:
    """Call once, when the process is ready to serve: what was built so far stays, and
    is no longer traversed by the collector; later objects are collected less often."""
    gc.collect()  # not to freeze start-up garbage with the rest
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, oldest)
