"""The schema documents the error answers every operation can give."""

from __future__ import annotations

from api.app import create_app
from authflow.settings import Settings
from tests.secret import TEST_SECRET


def test_every_operation_documents_the_body_limit() -> None:
    """BodyLimitMiddleware answers 413 to any request whose body is over the limit,
    before a route runs, so every operation can answer it (the schema fuzzer found
    routes that did not say so)."""
    schema = create_app(Settings(environment="test", jwt_secret=TEST_SECRET)).openapi()
    undocumented = [
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "413" not in operation["responses"]
    ]
    assert not undocumented
    upload = schema["paths"]["/api/v1/lessons/{lesson_id}/attachments"]["post"]
    assert upload["responses"]["413"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorResponse"
    }
