"""The HTTP API (FastAPI): validates, writes, commits, starts a workflow, answers."""
