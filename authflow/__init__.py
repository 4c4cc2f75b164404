"""authflow: the account lifecycle, with every email sent through Temporal workflows.

This package is the shared core that ``api``, ``activities`` and ``workers`` import:
settings, database models, security primitives and error types.  ``workflows`` never
imports it (workflow code must stay deterministic and free of I/O).
"""
