"""How uvicorn serves the API: one place for the HTTP server's own policy.

Keep-alive: whoever closes an idle connection first must be the client.  If the server
closes it at the very moment a client reuses it, the client's request meets a closed
socket (``httpx.ReadError``, a failed ``fetch``) and a POST is not retried for it.  uvicorn
closes idle connections after 5 s by default, exactly when httpx's pool expires them: a
burst reusing connections idle for ~5 s lost a request in 3 of 40 tries here.  75 s is
longer than the idle timeouts of common clients and proxies (httpx 5 s, nginx and cloud
load balancers 60 s), so they always let go first.
"""

from __future__ import annotations

from typing import Any

KEEP_ALIVE_SECONDS = 75

# Requests in flight get this long to finish when the server is asked to stop.
GRACEFUL_SHUTDOWN_SECONDS = 5


def uvicorn_options() -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` wherever the API is served."""
    return {
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        "log_config": None,
        # X-Forwarded-For / -Proto are believed only from TRUSTED_PROXIES, and the API
        # reads them itself (``api.deps.peer_address``/``request_scheme``); uvicorn's own
        # handling trusts 127.0.0.1 (or FORWARDED_ALLOW_IPS) by default: off.
        "proxy_headers": False,
    }
