"""authflow.throttle with an injected clock: cooldowns, wrong codes, login failures."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from authflow import throttle
from authflow.models import Throttle

T0 = 1_700_000_000.0
HOUR = 3600.0


def fresh_row() -> Throttle:
    return Throttle(key="k", count=0, window_started_at=0.0, last_at=0.0, blocked_until=0.0)


# --- resend cooldown ---------------------------------------------------------------------
def test_cooldown_counts_down_and_then_allows() -> None:
    row = fresh_row()
    assert throttle.cooldown_remaining(row, 60, now=T0) == 0
    throttle.start_cooldown(row, now=T0)
    assert throttle.cooldown_remaining(row, 60, now=T0) == 60
    assert throttle.cooldown_remaining(row, 60, now=T0 + 59.2) == 1  # rounded up, never 0
    assert throttle.cooldown_remaining(row, 60, now=T0 + 60) == 0


def test_seconds_until_is_at_least_one() -> None:
    assert throttle.seconds_until(T0 + 0.01, now=T0) == 1
    assert throttle.seconds_until(T0 - 5, now=T0) == 1
    assert throttle.seconds_until(T0 + 2.5, now=T0) == 3


def test_injected_zero_clock_is_honoured() -> None:
    """now=0.0 is a time like any other, not "use the wall clock"."""
    row = fresh_row()
    row.blocked_until = 5.0
    assert throttle.login_blocked_for(row, now=0.0) == 5
    assert throttle.seconds_until(5.0, now=0.0) == 5


# --- wrong codes -------------------------------------------------------------------------
def test_wrong_codes_exhaust_then_window_rolls() -> None:
    row = fresh_row()
    for expected in range(1, 6):
        assert not throttle.attempts_exhausted(row, 5, 600, now=T0 + expected)
        assert throttle.add_wrong_attempt(row, 600, now=T0 + expected) == expected
    assert throttle.attempts_exhausted(row, 5, 600, now=T0 + 10)
    assert throttle.attempts_exhausted(row, 5, 600, now=T0 + 600)  # window opened at T0+1
    assert not throttle.attempts_exhausted(row, 5, 600, now=T0 + 601)
    assert row.count == 5  # a check writes nothing: the next wrong try opens a new window
    assert throttle.add_wrong_attempt(row, 600, now=T0 + 601) == 1


def test_reset_gives_fresh_tries() -> None:
    row = fresh_row()
    for i in range(5):
        throttle.add_wrong_attempt(row, 600, now=T0 + i)
    throttle.reset(row)
    assert not throttle.attempts_exhausted(row, 5, 600, now=T0 + 6)


# --- login failures ----------------------------------------------------------------------
def test_free_failures_then_growing_delay() -> None:
    row = fresh_row()
    now = T0
    for _ in range(throttle.FREE_LOGIN_FAILURES - 1):
        throttle.add_login_failure(row, 100, now=now)
        assert throttle.login_blocked_for(row, now=now) == 0
    waits = []
    for _ in range(8):
        throttle.add_login_failure(row, 100, now=now)
        wait = throttle.login_blocked_for(row, now=now)
        assert wait >= 1
        assert throttle.login_blocked_for(row, now=now + wait - 0.5) >= 1  # still blocked
        waits.append(wait)
        now += wait  # the attacker retries as soon as allowed
        assert throttle.login_blocked_for(row, now=now) == 0
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128]


def test_delay_is_capped() -> None:
    row = fresh_row()
    now = T0
    for _ in range(30):
        throttle.add_login_failure(row, 100, now=now)
        now += throttle.login_blocked_for(row, now=now)
    throttle.add_login_failure(row, 100, now=now)
    assert throttle.login_blocked_for(row, now=now) <= throttle.MAX_LOGIN_DELAY


def test_success_resets() -> None:
    row = fresh_row()
    for i in range(7):
        throttle.add_login_failure(row, 100, now=T0 + 100 * i)
    assert throttle.login_blocked_for(row, now=T0 + 600) > 0
    throttle.reset(row)
    assert throttle.login_blocked_for(row, now=T0 + 600) == 0
    throttle.add_login_failure(row, 100, now=T0 + 601)
    assert row.count == 1
    assert throttle.login_blocked_for(row, now=T0 + 601) == 0


def test_a_burst_of_concurrent_guesses_gets_only_the_free_tries() -> None:
    """Login counts an attempt before checking its password, so attempts arriving at
    the same instant are counted and delayed as they come, like a sequence."""
    row = fresh_row()
    admitted = 0
    for _ in range(500):  # all "in flight" at the same instant
        if throttle.login_blocked_for(row, now=T0):
            continue
        throttle.add_login_failure(row, 100, now=T0)
        admitted += 1
    assert admitted == throttle.FREE_LOGIN_FAILURES
    assert throttle.login_blocked_for(row, now=T0) == 1


def test_window_cap_is_half_the_hourly_cap() -> None:
    assert throttle.window_cap(100) == 50
    assert throttle.window_cap(3) == 1
    assert throttle.window_cap(1) == 1


def _max_in_rolling_hour(times: list[float]) -> int:
    times = sorted(times)
    best, left = 0, 0
    for right, t in enumerate(times):
        while t - times[left] >= HOUR:
            left += 1
        best = max(best, right - left + 1)
    return best


def _attack(cap: int, hours: float, pause: Callable[[int], float]) -> list[float]:
    """Fail as often as allowed (after a chosen extra pause); return the failure times."""
    row = fresh_row()
    now, failures, step = T0, [], 0
    while now < T0 + hours * HOUR:
        step += 1
        wait = throttle.login_blocked_for(row, now=now)
        if wait:
            now += wait
            continue
        throttle.add_login_failure(row, cap, now=now)
        failures.append(now)
        now += pause(step)
    return failures


@pytest.mark.parametrize("cap", [100, 40, 10, 3, 1])
def test_never_more_than_the_cap_in_any_rolling_hour(cap: int) -> None:
    greedy = _attack(cap, 6, lambda _: 0.0)
    assert len(greedy) >= min(cap // 2, 10), "the attacker must get some tries"
    assert _max_in_rolling_hour(greedy) <= cap

    # Straddling a window's end: one failure opens a window, then a burst just before
    # it closes and another right after.
    def straddle(step: int) -> float:
        return HOUR - 30 if step == 1 else 0.0

    assert _max_in_rolling_hour(_attack(cap, 6, straddle)) <= cap

    rng = random.Random(cap)
    for _ in range(30):
        times = _attack(cap, 8, lambda _: rng.choice([0.0, 0.0, 1.0, 60.0, 900.0, 3000.0]))
        assert _max_in_rolling_hour(times) <= cap


def test_default_cap_is_never_exceeded_even_over_a_day() -> None:
    times = _attack(100, 24, lambda _: 0.0)
    assert _max_in_rolling_hour(times) <= 100
    # The doubling delay keeps a persistent attacker far below the cap.
    assert _max_in_rolling_hour(times) < 50
