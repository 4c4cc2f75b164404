"""``authflow bench announce``: its figures from hand-made sink records, and the limits
it hands the stack."""

from __future__ import annotations

import pytest

from authflow.policies import EmailKind
from authflow.settings import Settings
from devtools.bench.announce import CodeLoad, announce_metrics, code_metrics, stack_settings
from devtools.bench.load import RequestRecord
from devtools.bench.sink import ANNOUNCEMENT_SUBJECT, SendRecord, kind_of_subject
from devtools.bench.targets import announce_targets
from tests.secret import TEST_SECRET


def _accepted(kind: str, to: str, at: float, accepted: bool = True) -> SendRecord:
    return SendRecord(kind, to, at - 1, at, accepted, "250 ok" if accepted else "451 busy")


def test_the_bench_announcement_has_its_own_kind() -> None:
    assert kind_of_subject(f"{ANNOUNCEMENT_SUBJECT} 3fa2c1") == "announcement"
    assert kind_of_subject("Authflow Bench Announcement") == "announcement"
    # Anybody else's announcement, a course update, a reminder: not the bench's.
    assert kind_of_subject("New lessons in Python 101") == "notification"
    assert kind_of_subject("Re: authflow bench announcement") == "notification"


def test_figures_of_a_small_hand_made_broadcast() -> None:
    posted = 1000.0
    audience = {f"u{i}@example.com" for i in range(5)}
    records = [
        _accepted("announcement", "u0@example.com", 1001.0),
        _accepted("announcement", "u1@example.com", 1001.2),
        _accepted("announcement", "u1@example.com", 1003.0),  # its send was retried
        _accepted("announcement", "u2@example.com", 1001.4),
        _accepted("announcement", "u2@example.com", 1001.6),  # a duplicate
        _accepted("announcement", "u3@example.com", 1001.5, accepted=False),  # refused ...
        _accepted("announcement", "u3@example.com", 1002.0),  # ... then accepted
        # u4 never gets it: lost
        _accepted("announcement", "stranger@example.com", 1002.5),
        _accepted("register", "u4@example.com", 1001.1),  # another kind
    ]
    m = announce_metrics(
        post_sent_at=posted,
        audience=audience,
        records=records,
        retried={"u1@example.com", "u3@example.com"},
        limit=5.0,
    )
    assert m["announce_audience"] == 5
    assert (m["announce_delivered"], m["announce_lost"]) == (4, 1)
    assert (m["announce_duplicated"], m["announce_repeats"]) == (1, 1)
    assert m["announce_unexpected"] == 1
    assert m["announce_failed_attempts"] == 1
    # accepted at 1.0, 1.2, 1.4, 1.6, 2.0, 2.5, 3.0 (7 acceptances; 5 % of 7 trims none)
    assert m["announce_first_s"] == pytest.approx(1.0)
    assert m["announce_total_s"] == pytest.approx(3.0)
    assert m["announce_rate"] == pytest.approx(6 / 2.0)
    assert m["announce_rate_steady"] == pytest.approx(6 / 2.0)
    assert m["announce_ideal_s"] == pytest.approx(1.0)
    assert m["announce_target_s"] == pytest.approx(5 / (0.95 * 5))


def test_the_steady_rate_leaves_out_the_start_and_the_tail() -> None:
    # 100 sends: a slow start (first 5, 1 s apart), 90 at 10/s, a slow tail (last 5).
    times = [float(i) for i in range(5)]
    times += [5.0 + i / 10 for i in range(90)]
    times += [14.0 + i for i in range(5)]
    audience = {f"u{i}@example.com" for i in range(100)}
    records = [
        _accepted("announcement", f"u{i}@example.com", 100 + at) for i, at in enumerate(times)
    ]
    m = announce_metrics(
        post_sent_at=100.0, audience=audience, records=records, retried=set(), limit=10.0
    )
    assert m["announce_rate_steady"] == pytest.approx(10.0)
    assert m["announce_rate"] == pytest.approx(99 / 18.0)
    verdicts = {t.key: t.check(m)[0] for t in announce_targets(_limits(announcement=10.0))}
    assert verdicts["announce_rate_steady"] == "PASS"
    assert verdicts["announce_total_s"] == "MISS"  # 18 s > 100 / 9.5


def test_no_acceptance_leaves_the_times_unknown() -> None:
    m = announce_metrics(
        post_sent_at=0.0, audience={"u@example.com"}, records=[], retried=set(), limit=5.0
    )
    assert m["announce_lost"] == 1
    assert m.get("announce_total_s") is None
    assert m.get("announce_rate_steady") is None


def test_code_figures_of_one_phase() -> None:
    t = 50.0
    load = CodeLoad(
        registers=[
            RequestRecord("r0@example.com", t, t + 0.1, 202),
            RequestRecord("r1@example.com", t + 0.5, t + 0.6, 202),
            RequestRecord("r2@example.com", t + 1.0, None, None, "ReadTimeout"),
        ],
        resets=[RequestRecord("p0@example.com", t, t + 0.05, 202)],
    )
    records = [
        _accepted("register", "r0@example.com", t + 0.3),
        # r1's email never came: lost
        _accepted("password_reset", "p0@example.com", t + 0.9),
        _accepted("announcement", "r1@example.com", t + 0.7),  # another kind
    ]
    m: dict[str, float | None] = {}
    code_metrics(m, "during_", load, records)
    assert (m["during_code_requests"], m["during_code_non_2xx"]) == (4, 1)
    assert (m["during_reg_lost"], m["during_reset_lost"]) == (1, 0)
    assert m["during_reg_inbox_p50_ms"] == pytest.approx(300)
    assert m["during_reset_inbox_p99_ms"] == pytest.approx(900)


def _limits(**overrides: float) -> dict[str, float]:
    limits = {"register": 20.0, "password_reset": 10.0, "notification": 5.0, "announcement": 5.0}
    return {**limits, **overrides}


def test_the_stack_reads_back_the_limits_the_targets_use() -> None:
    limits = _limits(announcement=37.5)
    values = stack_settings(limits, "bench-x-admin@example.com", "a long admin secret")
    settings = Settings(
        environment="test", jwt_secret=TEST_SECRET, email_rate_limits=values["EMAIL_RATE_LIMITS"]
    )
    assert {kind.value: rate for kind, rate in settings.email_rate_limits.items()} == limits
    assert settings.email_rate_limits[EmailKind.ANNOUNCEMENT] == 37.5
    assert values["ADMIN_EMAIL"] == "bench-x-admin@example.com"
