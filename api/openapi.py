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


# RFC 6749 §5.1: a response carrying tokens must not be kept by any cache (a shared
# proxy's, the browser's back-forward store).  ``Pragma`` for HTTP/1.0 caches.
NO_STORE_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def no_store(description: str) -> dict[int | str, dict[str, Any]]:
    """The 200 of a route whose body carries tokens, with the headers it always has."""
    headers = {
        name: {"description": f"`{value}`: tokens are never cached", "schema": {"type": "string"}}
        for name, value in NO_STORE_HEADERS.items()
    }
    return {200: {"description": description, "headers": headers}}


def finish_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """What the route declarations cannot say one by one:

    * a 422 is always the contract's error shape (the handler answers every validation
      error so), never FastAPI's default ``HTTPValidationError`` that it documents for
      any route with parameters unless the route names 422 itself;
    * every ``/api/v1`` operation may answer 503 ``unavailable`` when the database or
      Temporal is down (the contract's rule; the error handlers answer it);
    * an error of a route that answers HTML (a page) is still the JSON error body: FastAPI
      files an error model under the route's own media type.
    """
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            answers = operation.setdefault("responses", {})
            for status, answer in answers.items():
                content = answer.get("content") or {}
                if status[:1] in "45" and "ErrorResponse" in str(content.get("text/html")):
                    # The page itself may answer a browser in HTML.
                    answer["content"] = {**error, "text/html": {}}
            invalid = answers.get("422")
            if invalid is not None and "HTTPValidationError" in str(invalid.get("content")):
                answers["422"] = {"description": _DESCRIPTIONS[422], "content": error}
            if path.startswith("/api/v1/") and "503" not in answers:
                answers["503"] = {"description": _DESCRIPTIONS[503], "content": error}
    components = schema.get("components", {}).get("schemas", {})
    if "HTTPValidationError" not in str(schema.get("paths")):
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
    return schema
