"""Temporal workflows: the life of each code and email, durable and visible in the Web UI.

Workflow code is deterministic: it imports only its input types, the declared policies
and activity references, never the database, settings or network code.
"""
