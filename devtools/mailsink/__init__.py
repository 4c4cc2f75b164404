"""Development SMTP mail sink with a web inbox and fault injection.

``MailSink`` receives and keeps mail inside the current asyncio loop; ``serve_inbox``
/ ``create_inbox_app`` show it in a browser and expose a JSON API (messages,
faults, stats) that tests and the benchmark use from other processes.
"""

from devtools.mailsink.inbox import InboxServer, create_inbox_app, serve_inbox
from devtools.mailsink.sink import (
    FAULT_MODES,
    FaultMode,
    Faults,
    MailSink,
    PortInUseError,
    StoredMessage,
)

__all__ = [
    "FAULT_MODES",
    "FaultMode",
    "Faults",
    "InboxServer",
    "MailSink",
    "PortInUseError",
    "StoredMessage",
    "create_inbox_app",
    "serve_inbox",
]
