"""The benchmark's sink records every send attempt with its start time, kind and code;
and the figures of a run are computed from those records as documented."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiosmtplib
import pytest

from activities.templates import build_message, render_code, render_notice
from devtools.bench.load import RequestRecord
from devtools.bench.monitor import Usage, cpu_until, role_of
from devtools.bench.scenarios import compute_metrics
from devtools.bench.sink import BenchSink, SendRecord, kind_of_subject, subject_of

SENDER = "no-reply@authflow.local"
LIMITS = {"register": 20.0, "password_reset": 10.0, "notification": 5.0}


@pytest.fixture
async def sink() -> AsyncIterator[BenchSink]:
    bench_sink = BenchSink("127.0.0.1", 0, seed=1)
    await bench_sink.start()
    yield bench_sink
    await bench_sink.stop()


async def _send(sink: BenchSink, purpose: str, to: str, code: str = "123456") -> None:
    rendered = render_code(purpose, code, 10)
    message = build_message(rendered, sender=SENDER, recipient=to, name=None)
    await aiosmtplib.send(
        message.data,
        sender=message.mail_from,
        recipients=[message.recipient],
        hostname=sink.host,
        port=sink.port,
        timeout=5,
    )


def test_kinds_follow_the_template_subjects() -> None:
    assert kind_of_subject(render_code("register", "123456", 10).subject) == "register"
    assert kind_of_subject(render_code("password_reset", "123456", 10).subject) == "password_reset"
    assert kind_of_subject(render_notice("password_changed", None).subject) == "notification"


async def test_each_accepted_send_is_recorded_with_its_code(sink: BenchSink) -> None:
    before = time.time()
    await _send(sink, "register", "Ada@Example.com", "654321")
    await _send(sink, "password_reset", "bob@example.com", "000042")
    after = time.time()
    first, second = sink.records
    assert (first.kind, first.recipient, first.code, first.accepted) == (
        "register",
        "ada@example.com",
        "654321",
        True,
    )
    assert (second.kind, second.code) == ("password_reset", "000042")
    for record in sink.records:
        assert before <= record.connected_at <= record.data_at <= after
    assert await sink.wait_for_code("ada@example.com", "register", timeout=1) == "654321"
    assert [r.recipient for r in sink.delivered("register")] == ["ada@example.com"]


def test_subjects_are_read_from_the_header_block() -> None:
    plain = b"From: a@x\r\nSubject: Your verification code\r\nTo: b@x\r\n\r\nSubject: body"
    assert subject_of(plain) == "Your verification code"
    folded = b"Subject: Your password\r\n reset code\r\n\r\nbody"
    assert subject_of(folded) == "Your password reset code"
    encoded = b"Subject: =?utf-8?b?Q29kZSBmw7xyIETDvHJlcg==?=\r\n\r\n"
    assert subject_of(encoded) == "Code f\u00fcr D\u00fcrer"
    assert subject_of(b"To: b@x\r\n\r\nSubject: only in the body") == ""
    built = build_message(
        render_code("password_reset", "123456", 10), sender=SENDER, recipient="b@x", name=None
    )
    assert subject_of(built.data) == render_code("password_reset", "123456", 10).subject


async def test_messages_are_stored_unparsed_and_codes_read_when_asked(sink: BenchSink) -> None:
    await _send(sink, "register", "dora@example.com", "271828")
    (stored,) = list(sink)
    assert stored.text == "" and stored.subject == render_code("register", "1", 10).subject
    (record,) = sink.records
    assert "code" not in record.__dict__  # not parsed yet
    assert record.code == "271828"


async def test_failed_attempts_are_recorded_too(sink: BenchSink) -> None:
    sink.faults.mode = "transient"
    with pytest.raises(aiosmtplib.SMTPResponseException):
        await _send(sink, "register", "carol@example.com")
    sink.faults.mode = "ok"
    await _send(sink, "register", "carol@example.com")
    failed, ok = sink.records
    assert not failed.accepted
    assert failed.reply.startswith("451")
    assert failed.code is None
    assert ok.accepted
    assert sink.delivered() == [ok]
    sink.reset_records()
    assert sink.records == []
    assert len(sink) == 0


async def test_wait_for_code_times_out(sink: BenchSink) -> None:
    with pytest.raises(TimeoutError):
        await sink.wait_for_code("nobody@example.com", "register", timeout=0.1)


def test_roles_from_command_lines() -> None:
    assert role_of(["/venv/bin/python3", "-m", "authflow.cli", "worker"]) == "worker"
    assert role_of(["/venv/bin/python3", "-m", "authflow.cli", "api"]) == "api"
    assert role_of(["/venv/bin/python3", "-m", "authflow.cli", "dev", "--workers", "2"]) == "dev"
    assert role_of(["/venv/bin/authflow", "worker", "--queue", "email-register"]) == "worker"
    assert role_of(["/venv/bin/temporal", "server", "start-dev", "--port", "7233"]) == "temporal"
    assert role_of([]) == "dev"


def _send_record(kind: str, to: str, start: float, accepted: bool = True) -> SendRecord:
    return SendRecord(kind, to, start, start + 0.01, accepted, "250 ok" if accepted else "451")


def _spike_metrics(
    t0: float,
    main: list[RequestRecord],
    records: list[SendRecord],
    prefix: str,
    *,
    probes: list[RequestRecord] | None = None,
    usage: Usage | None = None,
) -> dict[str, float | None]:
    """A spike's figures with a 40 ms hash."""
    return compute_metrics(
        n=len(main),
        t0=t0,
        main=main,
        probes=probes or [],
        resets=[],
        records=records,
        run_prefix=prefix,
        limits=LIMITS,
        hash_wall=0.04,
        hash_cpu=0.039,
        usage=usage,
        spike=True,
    )


def test_figures_of_a_small_hand_made_run() -> None:
    t0 = 1000.0
    prefix = "bench-x-"
    emails = [f"{prefix}{i}@example.com" for i in range(4)]
    main = [
        RequestRecord(emails[0], t0, t0 + 0.1, 202),
        RequestRecord(emails[1], t0, t0 + 0.2, 202),
        RequestRecord(emails[2], t0, t0 + 0.3, 202),
        RequestRecord(emails[3], t0, None, None, "ReadTimeout"),
    ]
    records = [
        _send_record("register", emails[0], t0 + 0.5),
        _send_record("register", emails[1], t0 + 1.65, accepted=False),
        _send_record("register", emails[1], t0 + 1.6),
        _send_record("register", emails[1], t0 + 2.0),  # a duplicate
        # emails[2] never arrives: lost; emails[3] was never accepted: not expected
        _send_record("register", "someone-else@example.com", t0 + 0.7),  # not ours
    ]
    probes = [
        RequestRecord("0", t0, t0 + 0.004, 200),
        RequestRecord("1", t0 + 0.05, t0 + 0.056, 200),
        RequestRecord("2", t0 + 5.0, t0 + 5.001, 200),  # after the last answer: not counted
    ]
    m = _spike_metrics(t0, main, records, prefix, probes=probes)
    assert (m["requests"], m["accepted"], m["non_2xx"]) == (4, 3, 1)
    assert m["ack_p50_ms"] == pytest.approx(200)
    assert m["ack_max_ms"] == pytest.approx(300)
    assert (m["delivered"], m["lost"], m["duplicated"]) == (2, 1, 1)
    # time to inbox: first arrival (DATA time) minus send time -> 0.51 s and 1.61 s
    assert m["inbox_p50_ms"] == pytest.approx((510 + 1610) / 2)
    # accepted (end of DATA answered 250) at 0.51, 1.61, 2.01: busiest [t, t+1) holds 2;
    # with the refusal at 1.66 every answered DATA counts 3 in [1.61, 2.61)
    assert m["max_1s_register"] == 2
    assert m["max_1s_register_data"] == 3
    assert m["attempts_register"] == 4
    assert m["failed_attempts"] == 1
    assert m["send_rate_register"] == pytest.approx(2 / 1.5)
    assert m["drain_s"] == pytest.approx(2.01)
    assert m["drain_ideal_s"] == pytest.approx(0.2)
    assert m["floor_ms"] == pytest.approx(4 * 40 / (m["cores"] or 1))
    assert m["probe_count"] == 2
    assert m["probe_p50_ms"] == pytest.approx(5)
    assert "cpu_per_reg_ms" not in m  # no process measurements when attached


def test_cpu_until_reads_the_timeline_between_samples() -> None:
    timeline = [
        (10.0, {"api": 0.0, "temporal": 0.0}),
        (11.0, {"api": 0.5, "temporal": 0.2}),
        (12.0, {"api": 1.5, "temporal": 0.2, "worker": 0.4}),  # a worker born at 11 s
    ]
    assert cpu_until(timeline, 9.0) == {}
    assert cpu_until(timeline, 11.0) == pytest.approx({"api": 0.5, "temporal": 0.2})
    halfway = cpu_until(timeline, 11.5)
    assert halfway == pytest.approx({"api": 1.0, "temporal": 0.2, "worker": 0.2})
    assert cpu_until(timeline, 99.0) == timeline[-1][1]
    assert cpu_until([], 11.0) == {}


def test_the_spike_reports_what_each_part_used_until_the_acks() -> None:
    t0 = 1000.0
    prefix = "bench-y-"
    emails = [f"{prefix}{i}@example.com" for i in range(3)]
    main = [RequestRecord(e, t0, t0 + 1.0 + i, 202) for i, e in enumerate(emails)]
    records = [_send_record("register", e, t0 + 0.5 + 2 * i) for i, e in enumerate(emails)]
    timeline = [
        (t0 + s, {"api": 0.4 * s, "worker": 0.1 * s, "temporal": 0.3 * s}) for s in range(6)
    ]
    usage = Usage(cpu_seconds=dict(timeline[-1][1]), timeline=timeline)
    m = _spike_metrics(t0, main, records, prefix, usage=usage)
    # answers at +1, +2, +3 s: their 99th percentile at +2.98 s
    assert m["ackwin_s"] == pytest.approx(2.98)
    assert m["ackwin_cpu_api_s"] == pytest.approx(0.4 * 2.98)
    assert m["ackwin_cpu_worker_s"] == pytest.approx(0.1 * 2.98)
    assert m["ackwin_cpu_temporal_s"] == pytest.approx(0.3 * 2.98)
    assert m["ackwin_busy"] == pytest.approx(0.8 / (m["cores"] or 1))
    assert m["ackwin_sends"] == 2  # accepted at +0.51 and +2.51; +4.51 came later
