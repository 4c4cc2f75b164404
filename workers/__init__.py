"""Worker processes: one Temporal worker per email task queue, all in one process or
spread over many (``authflow worker --queue NAME``)."""
