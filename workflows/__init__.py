"""Temporal workflows: the life of each code and email, durable and visible in the Web UI.

Workflow code is deterministic: it imports only its input types, the declared policies
and activity names (``workflows.names``), never the database, settings or network code
(tests/unit/test_layers.py checks it).

``workflows.catalog.ALL_WORKFLOWS``: every type a worker registers.
"""
