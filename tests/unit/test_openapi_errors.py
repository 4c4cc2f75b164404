"""The schema documents the error answers every operation can give."""

from __future__ import annotations

from api.admin.schemas import AuditOut
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


def test_validation_errors_and_unavailable_dependencies_use_the_error_shape() -> None:
    """FastAPI documents a 422 as its own ``HTTPValidationError`` unless a route names
    422 itself; the handler answers every one in the contract's shape, so the schema
    must say so (``DELETE /sessions/{id}`` and the admin resend were such routes)."""
    schema = create_app(Settings(environment="test", jwt_secret=TEST_SECRET)).openapi()
    error = {"$ref": "#/components/schemas/ErrorResponse"}
    assert "HTTPValidationError" not in str(schema)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            answers = operation["responses"]
            if "422" in answers:
                assert answers["422"]["content"]["application/json"]["schema"] == error
            if path.startswith("/api/v1/"):
                assert "503" in answers, f"{method.upper()} {path}"
                assert answers["503"]["content"]["application/json"]["schema"] == error
    resend = schema["paths"]["/api/v1/admin/otp/{delivery_id}/resend"]["post"]["responses"]
    assert "422" in resend


def test_a_pages_errors_are_documented_as_the_json_error_body() -> None:
    """FastAPI files an error model under a route's own media type: for the unsubscribe
    page that was text/html, while any non-browser client gets the JSON error."""
    schema = create_app(Settings(environment="test", jwt_secret=TEST_SECRET)).openapi()
    error = {"$ref": "#/components/schemas/ErrorResponse"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                content = answer.get("content") or {}
                if status[0] in "45" and content:
                    assert content["application/json"]["schema"] == error, (method, path, status)
                    assert "schema" not in content.get("text/html", {}), (method, path, status)


def test_the_audit_items_old_detail_field_is_marked_deprecated() -> None:
    """The contract names ``details``; ``detail`` is kept for earlier readers, and the
    schema tells new ones not to use it."""
    properties = AuditOut.model_json_schema()["properties"]
    assert properties["detail"].get("deprecated") is True
    assert "deprecated" not in properties["details"]


def test_answers_carrying_tokens_document_that_they_are_never_cached() -> None:
    schema = create_app(Settings(environment="test", jwt_secret=TEST_SECRET)).openapi()
    for path in ("/api/v1/auth/login", "/api/v1/auth/refresh"):
        ok = schema["paths"][path]["post"]["responses"]["200"]
        assert set(ok["headers"]) == {"Cache-Control", "Pragma"}, path
        assert ok["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/TokenPair"
        }
