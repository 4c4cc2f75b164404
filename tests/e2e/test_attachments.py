"""Lesson attachments: upload limits, type from the bytes, downloads with Range and safe
headers, access by lesson; on the folder backend and on an S3-compatible server (moto's
server mode, started here on a free port)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from authflow.courses.storage import FolderStorage, S3Storage, Storage, storage_from_url
from authflow.ports import free_port
from tests.learning_calls import API, enroll, instructor, learner, published_course
from tests.stack import Stack

pytestmark = pytest.mark.e2e

PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 64
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(params=["folder", "s3"])
async def storage(
    request: pytest.FixtureRequest, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Storage]:
    """The stack's API with each storage backend in turn."""
    services = stack.app.state.services
    original = services.storage
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        # The usual AWS_* variables, as a deployment would set them.
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        bucket = f"lessons-{stack.backend}"
        boto3.client("s3").create_bucket(Bucket=bucket)
        services.storage = storage_from_url(f"s3://{bucket}/attachments")
        assert isinstance(services.storage, S3Storage)
    else:
        assert isinstance(original, FolderStorage)
    yield services.storage
    services.storage = original


async def _upload(
    stack: Stack, headers: dict[str, str], lesson_id: str, data: bytes, name: str, ctype: str
) -> Any:
    return await stack.http.post(
        f"{API}/lessons/{lesson_id}/attachments",
        files={"file": (name, data, ctype)},
        headers=headers,
    )


async def test_upload_and_download(stack: Stack, storage: Storage) -> None:
    owner = await instructor(stack)
    student = await learner(stack)
    course, lessons = await published_course(stack, owner, lessons=[{"kind": "file"}])
    lesson_id = lessons[0]["id"]
    # The name and the declared type lie: the bytes decide.
    r = await _upload(stack, owner.headers, lesson_id, PDF, "notes.exe", "application/x-msdownload")
    assert r.status_code == 201, r.text
    meta = r.json()
    assert meta["content_type"] == "application/pdf"
    assert meta["size"] == len(PDF)
    assert meta["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert meta["filename"] == "notes.exe"

    await enroll(stack, student, course["id"])
    lesson = (await stack.http.get(f"{API}/lessons/{lesson_id}", headers=student.headers)).json()
    assert [a["id"] for a in lesson["attachments"]] == [meta["id"]]

    url = f"{API}/attachments/{meta['id']}"
    r = await stack.http.get(url, headers=student.headers)
    assert r.status_code == 200
    assert r.content == PDF
    assert r.headers["content-disposition"].startswith("attachment")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-type"].startswith("application/pdf")
    r = await stack.http.get(url, headers={**student.headers, "Range": "bytes=0-3"})
    assert r.status_code == 206
    assert r.content == PDF[:4]
    assert r.headers["content-range"] == f"bytes 0-3/{len(PDF)}"
    r = await stack.http.get(url, headers={**student.headers, "Range": "bytes=-6"})
    assert (r.status_code, r.content) == (206, PDF[-6:])
    r = await stack.http.get(url, headers={**student.headers, "Range": "bytes=10-"})
    assert (r.status_code, r.content) == (206, PDF[10:])
    r = await stack.http.get(url, headers={**student.headers, "Range": f"bytes={len(PDF)}-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(PDF)}"  # RFC 9110
    assert r.json()["error"]["code"] == "range_not_satisfiable"
    assert (await stack.http.get(url)).status_code == 401


async def test_download_headers_ranges_and_head(stack: Stack) -> None:
    """RFC 9110: an invalid range (last before first) is ignored, 200 with the whole file;
    RFC 6266: an ASCII ``filename`` beside ``filename*``; HEAD answers the GET's headers."""
    owner = await instructor(stack)
    student = await learner(stack)
    course, lessons = await published_course(stack, owner, lessons=[{"kind": "file"}])
    name = "Crème brûlée 日本.pdf"
    r = await _upload(stack, owner.headers, lessons[0]["id"], PDF, name, "application/pdf")
    assert r.status_code == 201, r.text
    await enroll(stack, student, course["id"])
    url = f"{API}/attachments/{r.json()['id']}"

    for invalid in ("bytes=5-2", "bytes=x-", "bytes=0-1,4-5"):
        r = await stack.http.get(url, headers={**student.headers, "Range": invalid})
        assert (r.status_code, r.content) == (200, PDF), invalid
        assert "content-range" not in r.headers
    r = await stack.http.get(url, headers={**student.headers, "Range": "bytes=2-2"})
    assert (r.status_code, r.content) == (206, PDF[2:3])

    r = await stack.http.get(url, headers=student.headers)
    disposition = r.headers["content-disposition"]
    assert disposition == (
        'attachment; filename="Creme brulee __.pdf"; '
        "filename*=UTF-8''Cr%C3%A8me%20br%C3%BBl%C3%A9e%20%E6%97%A5%E6%9C%AC.pdf"
    )
    get_headers = {
        k: r.headers[k] for k in ("content-type", "content-length", "content-disposition")
    }

    r = await stack.http.head(url, headers=student.headers)
    assert (r.status_code, r.content) == (200, b"")
    assert {k: r.headers[k] for k in get_headers} == get_headers
    assert r.headers["content-length"] == str(len(PDF))
    assert r.headers["accept-ranges"] == "bytes"
    r = await stack.http.head(url, headers={**student.headers, "Range": "bytes=0-3"})
    assert (r.status_code, r.content) == (206, b"")
    assert r.headers["content-range"] == f"bytes 0-3/{len(PDF)}"
    assert r.headers["content-length"] == "4"
    r = await stack.http.head(url, headers={**student.headers, "Range": f"bytes={len(PDF)}-"})
    assert (r.status_code, r.headers["content-range"]) == (416, f"bytes */{len(PDF)}")
    assert (await stack.http.head(url)).status_code == 401
    stranger = await learner(stack)
    assert (await stack.http.head(url, headers=stranger.headers)).status_code == 403
    assert (
        await stack.http.head(f"{API}/attachments/nope", headers=stranger.headers)
    ).status_code == 404


async def test_types_are_judged_from_the_bytes(stack: Stack, storage: Storage) -> None:
    owner = await instructor(stack)
    _, lessons = await published_course(stack, owner)
    lesson_id = lessons[0]["id"]
    r = await _upload(stack, owner.headers, lesson_id, PNG, "pic.txt", "text/plain")
    assert (r.status_code, r.json()["content_type"]) == (201, "image/png")
    r = await _upload(stack, owner.headers, lesson_id, "Ünïcode notes\n".encode(), "a.md", "x/y")
    assert (r.status_code, r.json()["content_type"]) == (201, "text/plain")
    for data, name in ((EXE, "setup.pdf"), (ELF, "tool.png"), (b"\x00\x01\x02\xff" * 50, "x.bin")):
        r = await _upload(stack, owner.headers, lesson_id, data, name, "application/pdf")
        assert r.status_code == 415, name
        assert r.json()["error"]["code"] == "unsupported_type"


async def test_too_large_is_413(stack: Stack) -> None:
    owner = await instructor(stack)
    _, lessons = await published_course(stack, owner)
    limit = stack.settings.max_upload_bytes
    data = b"a" * (limit + 1)
    r = await _upload(stack, owner.headers, lessons[0]["id"], data, "big.txt", "text/plain")
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "file_too_large"


async def test_no_reading_another_courses_files(stack: Stack) -> None:
    owner = await instructor(stack)
    student = await learner(stack)
    mine, _ = await published_course(stack, owner)
    _, theirs = await published_course(stack, owner)
    await enroll(stack, student, mine["id"])
    r = await _upload(stack, owner.headers, theirs[0]["id"], PDF, "secret.pdf", "application/pdf")
    secret = r.json()["id"]
    r = await stack.http.get(f"{API}/attachments/{secret}", headers=student.headers)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "not_enrolled"
    r = await stack.http.get(f"{API}/attachments/no-such-id", headers=student.headers)
    assert r.status_code == 404
    other = await instructor(stack)
    r = await _upload(stack, other.headers, theirs[0]["id"], PDF, "x.pdf", "application/pdf")
    assert r.status_code == 403


async def test_a_body_that_is_not_multipart_is_a_documented_400(stack: Stack) -> None:
    """Found by the schema fuzzer: a broken multipart body is answered 400 in the
    contract's error shape, and the schema documents that answer."""
    owner = await instructor(stack)
    _, lessons = await published_course(stack, owner)
    boundary = "9cc651cd2c8d168349f50fede4c361ac"
    r = await stack.http.post(
        f"{API}/lessons/{lessons[0]['id']}/attachments",
        content=f"--{boundary}\r\nFalse--{boundary}--\r\n".encode(),
        headers={**owner.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "bad_request"
    schema = (await stack.http.get("/openapi.json")).json()
    documented = schema["paths"]["/api/v1/lessons/{lesson_id}/attachments"]["post"]["responses"]
    assert "400" in documented
