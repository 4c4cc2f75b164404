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


def freeze_startup_objects() -> None:
    """Call once, when the process is ready to serve: what was built so far stays, and
    is no longer traversed by the collector."""
    gc.collect()  # not to freeze start-up garbage with the rest
    gc.freeze()
