"""OpenAPI helpers: every documented error response uses the contract's error shape."""

from __future__ import annotations

from typing import Any

from api.schemas_common import ErrorResponse

_DESCRIPTIONS = {
    400: "Bad request: an invalid or expired code, a wrong current password, a malformed body",
    401: "Missing, invalid, expired or revoked credentials",
    402: "Payment required (a paid course)",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    412: "Stale `If-Match` version (`version_conflict`)",
    413: "Body too large",
    415: "Unsupported file type (judged from the bytes)",
    416: "Range not satisfiable",
    422: "Validation error (may carry `details`)",
    429: "Throttled; see `Retry-After`",
    503: "A dependency (database or Temporal) is unavailable",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorResponse, "description": _DESCRIPTIONS[code]} for code in codes}
