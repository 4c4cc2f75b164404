"""Bad input on every auth endpoint: always a 4xx in the contract's error shape, never a
500, and nothing written; plus email safety (no header injection, one recipient)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.utils import getaddresses
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from authflow.models import User
from tests.auth_calls import AUTH
from tests.stack import Stack

pytestmark = pytest.mark.e2e

JSON = "application/json"
GOOD_PASSWORD = "a perfectly fine pass phrase"
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    body: dict[str, Any]
    optional: frozenset[str] = frozenset()
    bearer: bool = False
    emails: tuple[str, ...] = field(default=())


def _email() -> str:
    return "someone-bad-input@example.com"


ENDPOINTS = [
    Endpoint(
        "register",
        "/register",
        {"email": _email(), "password": GOOD_PASSWORD, "full_name": "Ann Example"},
        optional=frozenset({"full_name"}),
        emails=("email",),
    ),
    Endpoint("resend_otp", "/register/resend-otp", {"email": _email()}, emails=("email",)),
    Endpoint("verify", "/register/verify", {"email": _email(), "otp": "123456"}, emails=("email",)),
    Endpoint("login", "/login", {"email": _email(), "password": GOOD_PASSWORD}, emails=("email",)),
    Endpoint("refresh", "/refresh", {"refresh_token": "r" * 43}),
    Endpoint("logout", "/logout", {"refresh_token": "r" * 43}, bearer=True),
    Endpoint(
        "change_password",
        "/password/change",
        {"current_password": GOOD_PASSWORD, "new_password": GOOD_PASSWORD + " 2"},
        bearer=True,
    ),
    Endpoint("forgot", "/password/forgot", {"email": _email()}, emails=("email",)),
    Endpoint(
        "reset",
        "/password/reset",
        {"email": _email(), "otp": "123456", "new_password": GOOD_PASSWORD},
        emails=("email",),
    ),
]

EMAIL_BAD_FORMATS = [
    "not-an-email",
    "a@b",
    "@example.com",
    "a@@example.com",
    "a b@example.com",
    "a@example..com",
    "a@[127.0.0.1]",
    "Name <a@example.com>",
    "a@example.com, b@example.com",
    "a" * 300 + "@example.com",
    "",
]
EMAIL_INJECTIONS = [
    "a\r\n@example.com",
    "victim@example.com\r\nBcc: evil@example.com",
    "victim@example.com\nBcc: evil@example.com",
    "victim@example.com\rX: y",
    "a\x00@example.com",
    "a@example.com\x00",
    "a@example.com\n",
    "a\u2028b@example.com",
    "a\u0085b@example.com",
]
# Names that could become extra recipients once an address header is folded.
# Names that look like addresses (< > @) or hold quoting's escape: refused.
NAME_ADDRESS_TRICKS = [
    'Mallory <mallory@evil.example>, "Eve" <eve@evil.example>; bcc: x@evil.example',
    "Ann, eve@evil.example",
    "Ann <eve@evil.example>",
    "Ann \\ Bob",
]
# Names with an address header's other specials: real names, allowed and quoted.
NAMES_WITH_SPECIALS = [
    "Martin Luther King, Jr.",
    '"Ann" eve',
    "undisclosed-recipients: eve;",
    'Zoë "Z" Müller; PhD: 日本, x',
]
NAME_INJECTIONS = [
    "Ann\r\nBcc: evil@example.com",
    "Ann\nBcc: evil@example.com",
    "Ann\rX",
    "Ann\x00",
    "\x00",
    "Ann\u2028Bcc: evil@example.com",
    "Ann\u0085X",
    "Ann\x1b[31m",
]
WRONG_TYPES: dict[str, Any] = {
    "number": 12345,
    "float": 1.5,
    "bool": True,
    "list": ["x"],
    "object": {"a": "b"},
    "null": None,
}


@dataclass(frozen=True)
class Case:
    name: str
    content: bytes
    content_type: str | None = JSON
    expect_status: int | None = None
    expect_code: str | None = None


def _json(body: Any) -> bytes:
    return json.dumps(body).encode()


def cases_for(endpoint: Endpoint) -> list[Case]:
    body = endpoint.body
    cases = [
        Case("malformed_json", b'{"email": "a@example.com", '),
        Case("trailing_garbage", _json(body) + b"}}"),
        Case("single_quotes", str(body).encode()),
        Case("array", b"[]"),
        Case("array_of_body", _json([body])),
        Case("string", b'"hello"'),
        Case("null", b"null"),
        Case("number", b"42"),
        Case("empty_body", b""),
        Case("empty_object", b"{}"),
        Case("whitespace_body", b"   \n"),
        Case("invalid_utf8", b'{"x": "\xff\xfe\xfd"}'),
        Case("deep_nesting", b"[" * 20000 + b"]" * 20000),
        Case("text_plain", _json(body), content_type="text/plain"),
        Case(
            "form_urlencoded",
            b"email=a%40example.com&password=x",
            "application/x-www-form-urlencoded",
        ),
        Case("multipart", b"--x\r\n\r\n--x--\r\n", "multipart/form-data; boundary=x"),
        Case("xml", b"<email>a@example.com</email>", "application/xml"),
        Case("extra_field", _json({**body, "is_admin": True})),
        Case("extra_role_field", _json({**body, "roles": ["ADMIN"]})),
        Case(
            "one_megabyte",
            _json({**body, "pad": "x" * (1024 * 1024)}),
            expect_status=413,
            expect_code="payload_too_large",
        ),
    ]
    for name in body:
        if name not in endpoint.optional:
            cases.append(
                Case(f"missing_{name}", _json({k: v for k, v in body.items() if k != name}))
            )
        for label, value in WRONG_TYPES.items():
            if value is None and name in endpoint.optional:
                continue  # null is how an optional field is left out
            cases.append(Case(f"{name}_{label}", _json({**body, name: value})))
        cases.append(Case(f"{name}_huge", _json({**body, name: "a" * 5000})))
        cases.append(
            Case(
                f"{name}_lone_surrogate",
                _json(body).replace(
                    b'"' + name.encode() + b'": "', b'"' + name.encode() + b'": "\\ud800', 1
                ),
            )
        )
    for name in endpoint.emails:
        for i, bad in enumerate(EMAIL_BAD_FORMATS):
            cases.append(Case(f"{name}_bad_format_{i}", _json({**body, name: bad})))
        for i, bad in enumerate(EMAIL_INJECTIONS):
            cases.append(
                Case(
                    f"{name}_control_chars_{i}",
                    _json({**body, name: bad}),
                    expect_status=422,
                    expect_code="invalid_email",
                )
            )
    if "full_name" in body:
        for i, bad in enumerate(NAME_INJECTIONS + NAME_ADDRESS_TRICKS):
            cases.append(
                Case(
                    f"full_name_control_chars_{i}",
                    _json({**body, "full_name": bad}),
                    expect_status=422,
                    expect_code="invalid_name",
                )
            )
    return cases


PARAMS = [
    pytest.param(endpoint, case, id=f"{endpoint.name}-{case.name}")
    for endpoint in ENDPOINTS
    for case in cases_for(endpoint)
]


_bearers: dict[str, dict[str, Any]] = {}


async def bearer_session(stack: Stack) -> dict[str, Any]:
    """One signed-in user per backend for the bearer routes (their body is what's tested)."""
    if stack.backend not in _bearers:
        email, password = await stack.register_and_verify()
        _bearers[stack.backend] = await stack.login(email, password)
    return _bearers[stack.backend]


async def user_count(stack: Stack) -> int:
    async with stack.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


def assert_error_shape(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith(JSON), response.headers
    body = response.json()
    assert isinstance(body, dict), body
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"code", "message"} <= set(error) <= {"code", "message", "details"}, error
    assert isinstance(error["code"], str), error
    assert SNAKE.match(error["code"]), error
    assert isinstance(error["message"], str), error
    assert error["message"], error
    return dict(error)


@pytest.mark.parametrize(("endpoint", "case"), PARAMS)
async def test_bad_input_is_a_clean_4xx(stack: Stack, endpoint: Endpoint, case: Case) -> None:
    headers = {"Content-Type": case.content_type} if case.content_type else {}
    if endpoint.bearer:
        headers.update(stack.bearer(await bearer_session(stack)))
    users_before = await user_count(stack)
    response = await stack.http.post(
        f"{AUTH}{endpoint.path}", content=case.content, headers=headers
    )
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    error = assert_error_shape(response)
    if case.expect_status is not None:
        assert response.status_code == case.expect_status, response.text
    if case.expect_code is not None:
        assert error["code"] == case.expect_code, error
    assert await user_count(stack) == users_before, "a refused request wrote a user"
    if endpoint.bearer:  # the refused request ended nothing
        me = await stack.http.get(f"{AUTH}/me", headers=stack.bearer(await bearer_session(stack)))
        assert me.status_code == 200


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    yield b'{"pad": "'
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size
        await asyncio.sleep(0)
    yield b'"}'


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
async def test_one_megabyte_without_content_length_is_413(stack: Stack, endpoint: Endpoint) -> None:
    """Chunked: the limit holds while reading, not only from the declared length."""
    headers = {"Content-Type": JSON}
    if endpoint.bearer:
        headers.update(stack.bearer(await bearer_session(stack)))
    try:
        response = await stack.http.post(
            f"{AUTH}{endpoint.path}", content=_chunks(1024 * 1024), headers=headers
        )
    except httpx.TransportError:
        # The server may answer and close before the client finishes sending; then
        # the answer is lost with the connection. That is a refusal too, but check the
        # server did not fail: it must still answer normally.
        response = None
    assert (await stack.http.get("/healthz")).status_code == 200
    if response is not None:
        assert 400 <= response.status_code < 500, response.text
        error = assert_error_shape(response)
        assert response.status_code == 413, response.text
        assert error["code"] == "payload_too_large"


async def test_me_refuses_bad_requests_cleanly(stack: Stack) -> None:
    tokens = await bearer_session(stack)
    big = await stack.http.request(
        "GET",
        f"{AUTH}/me",
        content=b"x" * (1024 * 1024),
        headers={**stack.bearer(tokens), "Content-Type": JSON},
    )
    assert big.status_code == 413
    assert assert_error_shape(big)["code"] == "payload_too_large"
    for header in (
        b"Bearer",
        "Bearer éé".encode("latin-1"),
        b"Basic abc",
        b"Bearer " + b"a" * 4000,
    ):
        response = await stack.http.get(f"{AUTH}/me", headers={b"Authorization": header})
        assert response.status_code == 401, response.text
        assert_error_shape(response)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
async def test_wrong_method_is_a_clean_4xx(stack: Stack, endpoint: Endpoint) -> None:
    response = await stack.http.put(f"{AUTH}{endpoint.path}", json=endpoint.body)
    assert response.status_code == 405
    assert_error_shape(response)


# --- email safety ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAME_INJECTIONS + NAME_ADDRESS_TRICKS)
async def test_display_name_that_could_forge_a_header_is_refused(stack: Stack, name: str) -> None:
    email = stack.new_email("inject")
    mark = stack.sink.last_id
    response = await stack.register(email, GOOD_PASSWORD + " x", full_name=name)
    assert response.status_code == 422
    assert assert_error_shape(response)["code"] == "invalid_name"
    async with stack.db.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(User).where(User.email == email)
        )
    assert count == 0
    await asyncio.sleep(0.3)  # nothing was started, so nothing can arrive; look anyway
    assert not [m for m in stack.sink.messages if m.id > mark and m.is_to(email)]
    assert not [m for m in stack.sink.messages if m.id > mark and b"evil.example" in m.raw]


def _to_addresses(raw: bytes) -> list[str]:
    parsed = message_from_bytes(raw, policy=policy.default)
    for header in ("Cc", "Bcc"):
        assert parsed.get(header) is None
    return [addr for _, addr in getaddresses([str(h) for h in parsed.get_all("To", [])])]


async def _registration_mail(stack: Stack, full_name: str) -> tuple[str, list[str], list[str]]:
    email = stack.new_email("recipient")
    mark = stack.sink.last_id
    response = await stack.register(email, GOOD_PASSWORD + " y", full_name=full_name)
    assert response.status_code == 202, response.text
    message = await stack.wait_for_mail(email, after_id=mark)
    stack.remember(*re.findall(r"(?<!\d)\d{6}(?!\d)", message.text))
    return email, message.rcpt_tos, _to_addresses(message.raw)


@pytest.mark.parametrize("full_name", NAMES_WITH_SPECIALS)
async def test_a_name_with_commas_colons_or_quotes_registers_and_is_quoted(
    stack: Stack, full_name: str
) -> None:
    """``Martin Luther King, Jr.`` was refused (422 invalid_name).  Its email's To header
    carries the whole name as one quoted display name and exactly one recipient."""
    email = stack.new_email("special")
    mark = stack.sink.last_id
    response = await stack.register(email, GOOD_PASSWORD + " z", full_name=full_name)
    assert response.status_code == 202, response.text
    message = await stack.wait_for_mail(email, after_id=mark)
    stack.remember(*re.findall(r"(?<!\d)\d{6}(?!\d)", message.text))
    assert message.rcpt_tos == [email]
    parsed = message_from_bytes(message.raw, policy=policy.default)
    to = parsed["To"]
    assert [(a.display_name, a.addr_spec) for a in to.addresses] == [(full_name, email)]
    assert _to_addresses(message.raw) == [email]
    if full_name.isascii():  # one quoted-string, on one line (no encoded words)
        head = message.raw.replace(b"\r\n", b"\n").partition(b"\n\n")[0].decode()
        quoted = full_name.replace('"', '\\"')
        assert f'To: "{quoted}" <{email}>' in head.splitlines()


@pytest.mark.parametrize("full_name", ["Ada Lovelace", "J. R. R. Tolkien", "Zoë O'Brien"])
async def test_each_email_has_exactly_its_recipient(stack: Stack, full_name: str) -> None:
    email, envelope, to_header = await _registration_mail(stack, full_name)
    assert envelope == [email]
    assert to_header == [email]


async def test_a_long_display_name_keeps_the_to_header_intact(stack: Stack) -> None:
    long_name = ("Zoë O'Brien-Łukasiewicz (Jr.) [x] " * 6)[:200]
    email, envelope, to_header = await _registration_mail(stack, long_name)
    assert envelope == [email]
    assert to_header == [email]
