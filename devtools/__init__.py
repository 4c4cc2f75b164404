"""Development tooling: the benchmark, the mail sink with its web inbox, ``authflow dev``
and the embedded Temporal server's command line.

Not part of the production image (the Dockerfile copies only the core packages); the
``authflow dev`` and ``authflow bench`` commands load it on demand.
"""
