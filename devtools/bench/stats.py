"""The benchmark's arithmetic, kept pure so that its figures can be checked by hand.

Definitions (``docs/benchmarks.md`` repeats them):

* **percentile** ``q`` of ``n`` values: sort them, take the rank ``q / 100 * (n - 1)``
  and interpolate linearly between the two values around it (numpy's default
  ``"linear"`` method, Excel's ``PERCENTILE.INC``).  p0 is the minimum, p100 the maximum.
* **rolling-window count**: the number of events ``t`` with ``start <= t < start + width``
  (a half-open window).  The busiest window over all real ``start`` always begins at an
  event (slide any window right until its left edge meets its first event: nothing
  leaves it), so only event times need to be tried.  Two events exactly ``width`` apart
  are therefore never in the same window: sends spaced exactly ``1 / R`` apart give
  ``R`` per window, not ``R + 1``.
* **mean rate** of a series of events: ``(n - 1) / (last - first)``, the rate of the
  gaps; with a backlog the gaps are what the rate limiter controls.
* **drain time**: from the first request of a scenario to the last expected delivery.
* **accounting**: each expected recipient should receive exactly one email of a kind;
  *lost* recipients received none, *duplicated* recipients received more than one.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` by linear interpolation."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0 or math.isnan(q):
        raise ValueError(f"percentile must be within 0..100, got {q!r}")
    ordered = sorted(values)
    if any(math.isnan(v) for v in ordered):
        raise ValueError("percentile of NaN values")
    rank = q / 100.0 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def median(values: Sequence[float]) -> float:
    return percentile(values, 50.0)


def median_or_none(values: Iterable[float | None]) -> float | None:
    """Median of the values that are known; None when none is."""
    known = [v for v in values if v is not None]
    return median(known) if known else None


@dataclass(frozen=True)
class Summary:
    """p50/p95/p99/max of a sample; every figure is None for an empty sample."""

    count: int
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None

    def scaled(self, factor: float) -> Summary:
        """The same summary in other units (e.g. seconds -> milliseconds)."""

        def scale(value: float | None) -> float | None:
            return None if value is None else value * factor

        return Summary(
            self.count, scale(self.p50), scale(self.p95), scale(self.p99), scale(self.max)
        )


def summarize(values: Sequence[float]) -> Summary:
    if not values:
        return Summary(0, None, None, None, None)
    return Summary(
        count=len(values),
        p50=percentile(values, 50),
        p95=percentile(values, 95),
        p99=percentile(values, 99),
        max=max(values),
    )


def busiest_window(times: Iterable[float], width: float = 1.0) -> tuple[int, float | None]:
    """The largest number of events in any window ``[start, start + width)``, and the
    earliest ``start`` (an event time) that reaches it; ``(0, None)`` without events."""
    if width <= 0:
        raise ValueError(f"window width must be positive, got {width!r}")
    ordered = sorted(times)
    best, best_start = 0, None
    end = 0
    for begin, start in enumerate(ordered):
        end = max(end, begin)
        while end < len(ordered) and ordered[end] < start + width:
            end += 1
        if end - begin > best:
            best, best_start = end - begin, start
    return best, best_start


def max_in_window(times: Iterable[float], width: float = 1.0) -> int:
    """The largest number of events in any half-open window of ``width`` seconds."""
    return busiest_window(times, width)[0]


def rolling_counts(
    times: Iterable[float], *, start: float, stop: float, step: float, width: float = 1.0
) -> list[tuple[float, int]]:
    """Events in ``[g, g + width)`` for every grid point ``g = start + k * step < stop``
    (for charts: the rolling one-second count over time)."""
    if step <= 0 or width <= 0:
        raise ValueError("step and width must be positive")
    ordered = sorted(times)
    points = []
    k = 0
    while (grid := start + k * step) < stop:
        count = bisect_left(ordered, grid + width) - bisect_left(ordered, grid)
        points.append((grid, count))
        k += 1
    return points


def mean_rate(times: Iterable[float]) -> float | None:
    """``(n - 1) / (last - first)`` events per second; None for fewer than two events
    or when they all happened at the same instant."""
    ordered = sorted(times)
    if len(ordered) < 2 or ordered[-1] <= ordered[0]:
        return None
    return (len(ordered) - 1) / (ordered[-1] - ordered[0])


def drain_time(started_at: float, deliveries: Iterable[float]) -> float | None:
    """Seconds from ``started_at`` to the last delivery; None without deliveries."""
    last = max(deliveries, default=None)
    return None if last is None else last - started_at


def drain_target(n: int, rate_limit: float, floor_ratio: float = 0.95) -> float:
    """The longest acceptable drain of ``n`` sends at no less than ``floor_ratio * limit``."""
    if rate_limit <= 0 or floor_ratio <= 0:
        raise ValueError("rate limit and ratio must be positive")
    return n / (floor_ratio * rate_limit)


@dataclass(frozen=True)
class Accounting:
    expected: int  # distinct recipients that should receive one email
    delivered: int  # ... and received at least one
    lost: int  # ... and received none
    duplicated: int  # ... and received more than one
    extra_emails: int  # emails beyond the first, summed over expected recipients
    unexpected: int  # emails to recipients that were not expected


def account(expected: Iterable[str], received: Iterable[str]) -> Accounting:
    """Compare the expected recipients (one email each) with the recipients of the
    emails actually delivered (one entry per email).  Addresses compare case-insensitively."""
    wanted = {_norm(address) for address in expected}
    got = Counter(_norm(address) for address in received)
    delivered = sum(1 for address in wanted if got[address] > 0)
    return Accounting(
        expected=len(wanted),
        delivered=delivered,
        lost=len(wanted) - delivered,
        duplicated=sum(1 for address in wanted if got[address] > 1),
        extra_emails=sum(got[address] - 1 for address in wanted if got[address] > 1),
        unexpected=sum(count for address, count in got.items() if address not in wanted),
    )


def first_arrival_latencies(
    sent_at: Mapping[str, float], arrivals: Iterable[tuple[str, float]]
) -> list[float]:
    """For each recipient in ``sent_at`` that received something: first arrival minus
    the time its request was sent ("time to inbox").  Recipients with nothing are
    left out (they are counted as lost elsewhere)."""
    first: dict[str, float] = {}
    for address, at in arrivals:
        key = _norm(address)
        if key not in first or at < first[key]:
            first[key] = at
    sent = {_norm(address): at for address, at in sent_at.items()}
    return [first[address] - at for address, at in sent.items() if address in first]


def _norm(address: str) -> str:
    return address.strip().strip("<>").lower()
