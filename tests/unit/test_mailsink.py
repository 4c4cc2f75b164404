"""The development mail sink: real SMTP through aiosmtplib, the inbox, faults."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import httpx
import pytest

from devtools.mailsink import (
    FAULT_MODES,
    MailSink,
    PortInUseError,
    StoredMessage,
    create_inbox_app,
    serve_inbox,
)
from devtools.mailsink.inbox import PAGE_SIZE

SENDER = "no-reply@authflow.local"


def free_port() -> int:
    """A port that was free a moment ago (bind port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def sink() -> AsyncIterator[MailSink]:
    mail_sink = MailSink(port=free_port(), seed=1234)
    await mail_sink.start()
    yield mail_sink
    await mail_sink.stop()


@pytest.fixture
async def inbox(sink: MailSink) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_inbox_app(sink))
    async with httpx.AsyncClient(transport=transport, base_url="http://inbox") as client:
        yield client


@pytest.fixture
def blocker() -> Iterator[int]:
    """A port held by someone else (listening, so SO_REUSEADDR cannot share it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def make_email(
    to: str = "alice@example.com",
    subject: str = "Your code",
    text: str = "Your code is 123456",
    html: str | None = "<p>Your code is <b>123456</b></p>",
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Authflow <{SENDER}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


async def send(
    sink: MailSink,
    msg: EmailMessage | None = None,
    *,
    recipients: Sequence[str] | None = None,
    username: str | None = None,
    password: str | None = None,
) -> None:
    await aiosmtplib.send(
        msg or make_email(),
        hostname=sink.host,
        port=sink.port,
        timeout=5,
        recipients=recipients,
        username=username,
        password=password,
    )


async def send_status(sink: MailSink) -> int:
    """250 when accepted, else the SMTP error code the client saw."""
    try:
        await send(sink)
    except aiosmtplib.SMTPResponseException as exc:
        return exc.code
    return 250


# ------------------------------------------------------------------------- storage


async def test_stores_multipart_message(sink: MailSink) -> None:
    await send(sink, make_email(subject="Ваш код", text="Код: 123456 ✓"))

    message = await sink.wait_for(timeout=5)
    assert message.id == 1
    assert message.mail_from == SENDER
    assert message.rcpt_tos == ["alice@example.com"]
    assert message.subject == "Ваш код"
    assert message.text.strip() == "Код: 123456 ✓"
    assert message.html.strip() == "<p>Your code is <b>123456</b></p>"
    assert b"Subject:" in message.raw
    assert message.received_at > 0
    assert sink.stats() == {"attempts": 1, "accepted": 1, "count": 1}


async def test_ids_increase_and_envelope_recipients_are_kept(sink: MailSink) -> None:
    await send(sink, make_email(to="a@example.com"))
    await send(sink, make_email(to="b@example.com"), recipients=["b@example.com", "C@Example.com"])

    assert [m.id for m in sink.messages] == [1, 2]
    assert [m.id for m in sink.messages_to("c@example.com")] == [2]
    assert [m.id for m in sink.messages_to("A@EXAMPLE.COM")] == [1]
    assert sink.messages_to("nobody@example.com") == []


async def test_html_only_and_malformed_messages_are_stored(sink: MailSink) -> None:
    await send(sink, make_email(text="ignored", html=None))
    html_only = EmailMessage()
    html_only["Subject"] = "html only"
    html_only.set_content("<p>hi</p>", subtype="html")
    await aiosmtplib.send(
        html_only, sender=SENDER, recipients=["x@example.com"], hostname=sink.host, port=sink.port
    )
    broken = (
        b"Subject: =?bogus?Q?broken?=\r\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nhello \xff\r\n"
    )
    await aiosmtplib.send(
        broken, sender=SENDER, recipients=["y@example.com"], hostname=sink.host, port=sink.port
    )

    text_only, html_msg, broken_msg = sink.messages
    assert text_only.html == ""
    assert html_msg.text == ""
    assert html_msg.html.strip() == "<p>hi</p>"
    assert "hello" in broken_msg.text
    assert broken_msg.header_items()  # still displayable


async def test_any_login_is_accepted(sink: MailSink) -> None:
    await send(sink, username="user", password="secret")
    assert len(sink) == 1


async def test_wait_for_waits_for_a_future_message(sink: MailSink) -> None:
    await send(sink, make_email(to="old@example.com"))
    waiter = asyncio.create_task(
        sink.wait_for(lambda m: m.is_to("bob@example.com"), timeout=5, after_id=sink.last_id)
    )
    await asyncio.sleep(0.05)
    assert not waiter.done()

    await send(sink, make_email(to="bob@example.com"))
    message = await waiter
    assert message.rcpt_tos == ["bob@example.com"]


async def test_wait_for_times_out_with_a_useful_message(sink: MailSink) -> None:
    await send(sink)
    with pytest.raises(TimeoutError, match=r"no matching message within 0\.1s; 1 stored"):
        await sink.wait_for(lambda m: m.is_to("nobody@example.com"), timeout=0.1)


async def test_clear_keeps_ids_increasing(sink: MailSink) -> None:
    await send(sink)
    assert sink.clear() == 1
    assert sink.messages == []
    await send(sink)
    assert sink.messages[0].id == 2


# ------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("mode", "code"),
    [("transient", 451), ("permanent", 550), ("ratelimit", 421)],
)
async def test_fault_modes_answer_data_with_the_right_code(
    sink: MailSink, mode: str, code: int
) -> None:
    sink.faults.mode = mode
    with pytest.raises(aiosmtplib.SMTPResponseException) as excinfo:
        await send(sink)
    assert excinfo.value.code == code
    assert sink.stats() == {"attempts": 1, "accepted": 0, "count": 0}

    sink.faults.mode = "ok"
    await send(sink)
    assert sink.stats() == {"attempts": 2, "accepted": 1, "count": 1}


async def test_ratelimit_reply_closes_the_connection(sink: MailSink) -> None:
    sink.faults.mode = "ratelimit"
    reader, writer = await asyncio.open_connection(sink.host, sink.port)
    try:
        script = [b"EHLO client", b"MAIL FROM:<a@b.c>", b"RCPT TO:<d@e.f>", b"DATA"]
        await reader.readline()  # greeting
        for line in script:
            writer.write(line + b"\r\n")
            while (await reader.readline())[3:4] == b"-":  # skip multi-line EHLO reply
                pass
        writer.write(b"Subject: x\r\n\r\nbody\r\n.\r\n")
        assert (await reader.readline()).startswith(b"421 4.7.0")
        assert await asyncio.wait_for(reader.read(), timeout=2) == b""  # server closed
    finally:
        writer.close()


async def test_transient_ratio_is_random_but_reproducible(sink: MailSink) -> None:
    sink.faults.transient_ratio = 0.5

    async def run() -> list[int]:
        sink.faults.reseed(7)
        return [await send_status(sink) for _ in range(16)]

    first = await run()
    assert set(first) == {250, 451}
    assert await run() == first
    assert sink.attempts == 32
    assert sink.accepted == 2 * first.count(250)

    sink.faults.transient_ratio = 1.0
    assert await send_status(sink) == 451
    sink.faults.transient_ratio = 0.0
    assert await send_status(sink) == 250


async def test_invalid_fault_settings_are_rejected(sink: MailSink) -> None:
    with pytest.raises(ValueError, match="unknown fault mode"):
        sink.faults.mode = "flaky"
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        sink.faults.transient_ratio = 1.5
    assert sink.faults.as_dict() == {"mode": "ok", "transient_ratio": 0.0}


async def test_down_refuses_connections_and_recovers(sink: MailSink) -> None:
    client = aiosmtplib.SMTP(hostname=sink.host, port=sink.port, timeout=5)
    await client.connect()

    sink.faults.mode = "down"
    assert not sink.listening
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await send(sink)
    # A session opened before the outage is dropped too, as a crashed server would.
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await client.sendmail(SENDER, ["alice@example.com"], "Subject: x\r\n\r\nx\r\n")
    client.close()

    sink.faults.mode = "ok"  # connecting right away must work (no await in between)
    await send(sink)
    assert sink.listening
    assert sink.stats() == {"attempts": 1, "accepted": 1, "count": 1}


async def test_down_cannot_recover_when_the_port_was_taken(sink: MailSink) -> None:
    sink.faults.mode = "down"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind((sink.host, sink.port))
        squatter.listen(1)
        with pytest.raises(PortInUseError, match=f"port {sink.port} is already in use"):
            sink.faults.mode = "ok"
        assert sink.faults.mode == "down"
    sink.faults.mode = "ok"
    await send(sink)


# ------------------------------------------------------------------------- lifecycle


async def test_port_in_use_raises_a_clear_error(blocker: int) -> None:
    busy = MailSink(port=blocker)
    with pytest.raises(PortInUseError, match=f"port {blocker} is already in use"):
        await busy.start()
    assert not busy.running


async def test_port_zero_picks_a_free_port() -> None:
    async with MailSink(port=0) as any_port:
        assert any_port.port != 0
        await send(any_port)
        assert len(any_port) == 1


async def test_persistence_survives_a_restart(tmp_path: Path) -> None:
    port = free_port()
    first = MailSink(port=port, store_dir=tmp_path / "mail")
    async with first:
        await send(first, make_email(to="carol@example.com", subject="Welcome"))
        await send(first, make_email(to="dave@example.com"))
    original: list[StoredMessage] = first.messages
    assert sorted(p.name for p in (tmp_path / "mail").iterdir()) == ["1.eml", "2.eml"]

    second = MailSink(port=port, store_dir=tmp_path / "mail")
    async with second:
        assert second.messages == original
        await send(second)
        assert [m.id for m in second.messages] == [1, 2, 3]
        second.clear()
        assert list((tmp_path / "mail").iterdir()) == []


async def test_a_plain_eml_dropped_in_the_store_is_loaded(tmp_path: Path) -> None:
    (tmp_path / "7.eml").write_bytes(bytes(make_email(to="Eve <eve@example.com>")))
    (tmp_path / "notes.eml").write_bytes(b"ignored: not a numeric id")
    async with MailSink(port=0, store_dir=tmp_path) as loaded:
        (message,) = loaded.messages
        assert message.id == 7
        assert message.rcpt_tos == ["eve@example.com"]
        assert message.mail_from == SENDER
        assert loaded.last_id == 7


# ------------------------------------------------------------------------- inbox


async def test_inbox_pages_escape_untrusted_content(
    sink: MailSink, inbox: httpx.AsyncClient
) -> None:
    evil = '<script>alert("x")</script>'
    await send(
        sink,
        make_email(
            subject=evil,
            text="<img src=x onerror=alert(1)> code 654321",
            html=f"<p>code 654321</p>{evil}",
        ),
    )

    listing = await inbox.get("/")
    assert listing.status_code == 200
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in listing.text
    assert "<script>" not in listing.text
    assert "sandbox" not in listing.headers["content-security-policy"]
    assert 'href="http://inbox/messages/1"' in listing.text

    page = await inbox.get("/messages/1")
    assert page.status_code == 200
    assert "<pre>&lt;img src=x onerror=alert(1)&gt; code 654321" in page.text
    assert "<script>" not in page.text
    assert 'sandbox="allow-popups' in page.text
    assert 'src="http://inbox/messages/1/html"' in page.text

    html_part = await inbox.get("/messages/1/html")
    assert html_part.status_code == 200
    assert html_part.headers["content-security-policy"].startswith("sandbox")
    assert "default-src 'none'" in html_part.headers["content-security-policy"]
    assert "<p>code 654321</p>" in html_part.text  # served as-is, but sandboxed


async def test_inbox_lists_newest_first_and_404s(sink: MailSink, inbox: httpx.AsyncClient) -> None:
    await send(sink, make_email(subject="first-subject"))
    await send(sink, make_email(subject="second-subject", html=None))

    listing = (await inbox.get("/")).text
    assert listing.index("second-subject") < listing.index("first-subject")
    assert (await inbox.get("/messages/99")).status_code == 404
    assert (await inbox.get("/messages/2/html")).status_code == 404  # no HTML part


async def test_json_api(sink: MailSink, inbox: httpx.AsyncClient) -> None:
    await send(sink, make_email(to="alice@example.com"))
    await send(sink, make_email(to="bob@example.com", subject="Hi Bob"))

    all_messages = (await inbox.get("/api/messages")).json()
    assert [m["id"] for m in all_messages] == [1, 2]
    assert set(all_messages[0]) == {"id", "received_at", "from", "to", "subject", "text", "html"}

    (bob,) = (await inbox.get("/api/messages", params={"to": "BOB@example.com"})).json()
    assert bob["to"] == ["bob@example.com"]
    assert bob["subject"] == "Hi Bob"
    assert bob["from"] == SENDER
    assert "123456" in bob["text"]
    assert "<b>123456</b>" in bob["html"]

    assert (await inbox.get("/api/messages/2")).json() == bob
    assert (await inbox.get("/api/messages/42")).status_code == 404
    assert (await inbox.get("/api/stats")).json() == {"attempts": 2, "accepted": 2, "count": 2}

    assert (await inbox.delete("/api/messages")).json() == {"deleted": 2}
    assert (await inbox.get("/api/messages")).json() == []
    assert (await inbox.get("/api/stats")).json() == {"attempts": 2, "accepted": 2, "count": 0}
    assert (await inbox.delete("/api/stats")).json() == {"attempts": 0, "accepted": 0, "count": 0}


async def test_faults_api_switches_the_smtp_server(
    sink: MailSink, inbox: httpx.AsyncClient
) -> None:
    assert (await inbox.get("/api/faults")).json() == {"mode": "ok", "transient_ratio": 0.0}

    response = await inbox.put("/api/faults", json={"mode": "permanent"})
    assert response.json() == {"mode": "permanent", "transient_ratio": 0.0}
    assert await send_status(sink) == 550

    await inbox.put("/api/faults", json={"mode": "down"})
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await send(sink)

    response = await inbox.put("/api/faults", json={"mode": "ok", "transient_ratio": 1.0})
    assert response.json() == {"mode": "ok", "transient_ratio": 1.0}
    assert await send_status(sink) == 451

    assert (await inbox.put("/api/faults", json={"mode": "flaky"})).status_code == 422
    assert (await inbox.put("/api/faults", json={"transient_ratio": 2})).status_code == 422
    assert (await inbox.put("/api/faults", json={"nope": 1})).status_code == 422
    assert sink.faults.as_dict() == {"mode": "ok", "transient_ratio": 1.0}


async def test_serve_inbox_runs_a_real_server(sink: MailSink) -> None:
    server = await serve_inbox(sink, "127.0.0.1", 0)
    try:
        await send(sink)
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
            assert (await client.get("/api/stats")).json()["count"] == 1
            assert "Your code" in (await client.get("/")).text
    finally:
        await server.stop()
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
            await client.get("/api/stats")


async def test_serve_inbox_port_in_use(sink: MailSink, blocker: int) -> None:
    with pytest.raises(PortInUseError, match=f"port {blocker} is already in use"):
        await serve_inbox(sink, "127.0.0.1", blocker)


# ------------------------------------------------------------------- inbox, as people use it


async def test_inbox_filters_by_recipient_and_subject(
    sink: MailSink, inbox: httpx.AsyncClient
) -> None:
    await send(sink, make_email(to="alice@example.com", subject="Your code"))
    await send(sink, make_email(to="bob@example.com", subject="Reset your password"))
    await send(sink, make_email(to="bob@example.com", subject="Your code"))

    by_to = (await inbox.get("/", params={"to": "BOB@"})).text
    assert "alice@example.com" not in by_to and by_to.count('data-id="') == 2
    both = (await inbox.get("/", params={"to": "bob", "subject": "reset"})).text
    assert both.count('data-id="') == 1 and "Reset your password" in both
    none = (await inbox.get("/", params={"subject": "nothing like it"})).text
    assert "No message matches." in none

    api = (await inbox.get("/api/messages", params={"subject": "code"})).json()
    assert [m["id"] for m in api] == [1, 3]


async def test_inbox_shows_the_code_or_else_the_first_line(
    sink: MailSink, inbox: httpx.AsyncClient
) -> None:
    await send(sink, make_email(text="Hello,\n\nyour code is 246810; it expires soon."))
    await send(sink, make_email(subject="News", text="\n  Welcome aboard!\nMore text.", html=None))
    listing = (await inbox.get("/")).text
    assert '<span class="code">246810</span>' in listing
    assert '<span class="muted">Welcome aboard!</span>' in listing


async def test_inbox_pages_through_many_messages(sink: MailSink, inbox: httpx.AsyncClient) -> None:
    for index in range(PAGE_SIZE + 3):
        await send(sink, make_email(subject=f"message {index}"))
    first = (await inbox.get("/")).text
    assert first.count('data-id="') == PAGE_SIZE
    assert "page 1 of 2" in first and 'rel="next"' in first
    second = (await inbox.get("/", params={"page": 2})).text
    assert second.count('data-id="') == 3 and 'rel="prev"' in second
    assert (await inbox.get("/", params={"page": 99})).status_code == 200  # clamped
    rows = await inbox.get("/rows", params={"page": 2})
    assert rows.text.count('data-id="') == 3 and "<html" not in rows.text


async def test_inbox_deletes_one_message_or_all(sink: MailSink, inbox: httpx.AsyncClient) -> None:
    for _ in range(3):
        await send(sink)
    assert (await inbox.delete("/api/messages/2")).json() == {"deleted": 1}
    assert [m.id for m in sink.messages] == [1, 3]
    missing = await inbox.delete("/api/messages/2")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"

    form = await inbox.post("/messages/1/delete", headers={"Origin": "http://inbox"})
    assert form.status_code == 303
    assert [m.id for m in sink.messages] == [3]
    foreign = await inbox.post("/clear", headers={"Origin": "http://elsewhere.example"})
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "forbidden"
    assert (await inbox.post("/clear")).status_code == 303
    assert sink.messages == []


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nope", 404, "not_found"),
        ("GET", "/api/nope", 404, "not_found"),
        ("GET", "/messages/77", 404, "not_found"),
        ("POST", "/api/messages", 405, "method_not_allowed"),
        ("GET", "/api/messages/abc", 422, "validation_error"),
    ],
)
async def test_inbox_errors_use_the_contracts_shape(
    inbox: httpx.AsyncClient, method: str, path: str, status: int, code: str
) -> None:
    response = await inbox.request(method, path)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and error["message"]


async def test_inbox_explains_the_faults_switch(inbox: httpx.AsyncClient) -> None:
    page = (await inbox.get("/")).text
    for mode in FAULT_MODES:
        assert f"<dt>{mode}</dt>" in page
    assert "curl -X PUT http://inbox/api/faults" in page
