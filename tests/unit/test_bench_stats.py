"""The benchmark's arithmetic, checked against hand-computed values and brute force."""

from __future__ import annotations

import math
import random

import pytest

from devtools.bench import stats
from devtools.bench.targets import Target, spike_targets

# --------------------------------------------------------------------------- percentile


def test_percentile_interpolates_linearly_between_ranks() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    # rank = q/100 * (n-1): p50 -> 1.5 -> halfway between 20 and 30
    assert stats.percentile(values, 50) == 25.0
    # p95 -> rank 2.85 -> 30 + 0.85 * 10
    assert stats.percentile(values, 95) == pytest.approx(38.5)
    # p99 -> rank 2.97 -> 30 + 0.97 * 10
    assert stats.percentile(values, 99) == pytest.approx(39.7)
    assert stats.percentile(values, 0) == 10.0
    assert stats.percentile(values, 100) == 40.0


def test_percentile_of_an_odd_sample_hits_the_middle_value() -> None:
    assert stats.percentile([3.0, 1.0, 2.0], 50) == 2.0  # unsorted input is fine
    assert stats.median([5.0, 1.0, 9.0, 7.0, 3.0]) == 5.0


def test_percentile_of_one_value_is_that_value() -> None:
    for q in (0, 1, 50, 99, 100):
        assert stats.percentile([42.0], q) == 42.0


def test_percentile_of_100_values() -> None:
    values = [float(i) for i in range(1, 101)]  # 1..100
    # rank 0.99 * 99 = 98.01 -> 99 + 0.01 * (100 - 99)
    assert stats.percentile(values, 99) == pytest.approx(99.01)
    assert stats.percentile(values, 50) == pytest.approx(50.5)
    assert stats.percentile(values, 95) == pytest.approx(95.05)


def test_percentile_agrees_with_the_statistics_module() -> None:
    # statistics.quantiles(method="inclusive") uses the same definition.
    import statistics

    rng = random.Random(3)
    for _ in range(50):
        values = [rng.uniform(0, 1000) for _ in range(rng.randint(2, 60))]
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        for q in (1, 25, 50, 95, 99):
            assert stats.percentile(values, q) == pytest.approx(cuts[q - 1])


def test_percentile_is_monotonic_in_q_and_bounded() -> None:
    rng = random.Random(1)
    values = [rng.expovariate(1.0) for _ in range(37)]
    previous = -math.inf
    for q in range(101):
        p = stats.percentile(values, q)
        assert min(values) <= p <= max(values)
        assert p >= previous
        previous = p


@pytest.mark.parametrize("q", [-1, 100.5, float("nan")])
def test_percentile_rejects_bad_q(q: float) -> None:
    with pytest.raises(ValueError):
        stats.percentile([1.0, 2.0], q)


def test_percentile_rejects_empty_and_nan_samples() -> None:
    with pytest.raises(ValueError):
        stats.percentile([], 50)
    with pytest.raises(ValueError):
        stats.percentile([1.0, float("nan")], 50)


def test_summary_and_scaling() -> None:
    summary = stats.summarize([0.1, 0.2, 0.3, 0.4, 0.5])
    assert summary.count == 5
    assert summary.p50 == pytest.approx(0.3)
    assert summary.p95 == pytest.approx(0.48)  # rank 3.8
    assert summary.p99 == pytest.approx(0.496)  # rank 3.96
    assert summary.max == 0.5
    in_ms = summary.scaled(1000)
    assert in_ms.p50 == pytest.approx(300)
    assert in_ms.max == pytest.approx(500)
    assert in_ms.count == 5


def test_summary_of_nothing_is_all_none() -> None:
    empty = stats.summarize([])
    assert empty == stats.Summary(0, None, None, None, None)
    assert empty.scaled(1000) == empty


def test_median_or_none_skips_unknown_values() -> None:
    assert stats.median_or_none([None, 3.0, 1.0, None, 2.0]) == 2.0
    assert stats.median_or_none([None, None]) is None
    assert stats.median_or_none([]) is None


# --------------------------------------------------------------------------- rolling window


def _brute_force(times: list[float], width: float) -> int:
    """Try every event as a window start (and a few other starts), count directly."""
    starts = set(times) | {t - width / 2 for t in times} | {t + 1e-9 for t in times}
    return max((sum(1 for x in times if s <= x < s + width) for s in starts), default=0)


def test_window_is_half_open_two_events_exactly_one_second_apart_are_not_together() -> None:
    assert stats.max_in_window([0.0, 1.0]) == 1
    assert stats.max_in_window([0.0, 0.5, 1.0]) == 2  # [0, 1) holds 0 and 0.5
    assert stats.max_in_window([0.0, 0.999, 1.0]) == 2


def test_sends_spaced_exactly_one_over_r_give_r_per_window() -> None:
    # 0.25 s gaps are exact in binary: 4/s spacing gives 4 per window, never 5.
    times = [i * 0.25 for i in range(20)]
    assert stats.max_in_window(times) == 4
    # and 0.125 s gaps: 8 per window.
    assert stats.max_in_window([i * 0.125 for i in range(40)]) == 8


def test_a_burst_after_a_quiet_period() -> None:
    times = [0.0, 5.0, 5.1, 5.2, 5.3, 6.2, 6.31, 7.0]
    # [5.0, 6.0) holds 5.0, 5.1, 5.2, 5.3; [5.3, 6.3) holds 5.3, 6.2 -> 4 is the maximum
    assert stats.busiest_window(times) == (4, 5.0)


def test_busiest_window_reports_the_earliest_start() -> None:
    assert stats.busiest_window([0.0, 0.5, 3.0, 3.5]) == (2, 0.0)


def test_duplicate_timestamps_all_count() -> None:
    assert stats.max_in_window([2.0, 2.0, 2.0, 3.0]) == 3


def test_window_of_nothing_and_of_one_event() -> None:
    assert stats.busiest_window([]) == (0, None)
    assert stats.max_in_window([7.5]) == 1


def test_other_widths() -> None:
    times = [0.0, 0.1, 0.2, 0.35, 0.5]
    assert stats.max_in_window(times, width=0.25) == 3  # [0, 0.25)
    assert stats.max_in_window(times, width=10) == 5
    with pytest.raises(ValueError):
        stats.max_in_window(times, width=0)


def test_unsorted_input_gives_the_same_answer() -> None:
    times = [0.9, 0.1, 2.5, 0.5, 1.05, 1.2]
    assert stats.max_in_window(times) == stats.max_in_window(sorted(times)) == 4


def test_rolling_window_matches_brute_force_on_random_data() -> None:
    rng = random.Random(7)
    for _ in range(300):
        n = rng.randint(0, 40)
        times = [round(rng.uniform(0, 5), rng.choice([1, 2, 3])) for _ in range(n)]
        width = rng.choice([0.5, 1.0, 2.0])
        assert stats.max_in_window(times, width) == _brute_force(times, width)


def test_rolling_window_matches_an_exhaustive_scan_of_every_start() -> None:
    # Integer times (think milliseconds) keep the arithmetic exact: the count changes
    # only at integer starts, so scanning every integer start is exhaustive and does
    # not rely on "the busiest window begins at an event".
    rng = random.Random(13)
    for _ in range(60):
        times = [float(rng.randint(0, 3000)) for _ in range(rng.randint(1, 25))]
        width = float(rng.choice([250, 1000]))
        exhaustive = max(
            sum(1 for t in times if s <= t < s + width)
            for s in range(int(min(times)) - int(width), int(max(times)) + 1)
        )
        assert stats.max_in_window(times, width) == exhaustive


def test_rolling_counts_for_charts() -> None:
    times = [0.0, 0.5, 1.0, 1.5, 2.0]
    points = stats.rolling_counts(times, start=0.0, stop=2.5, step=0.5)
    assert points == [(0.0, 2), (0.5, 2), (1.0, 2), (1.5, 2), (2.0, 1)]
    # The busiest grid point never exceeds the exact busiest window.
    rng = random.Random(5)
    events = [rng.uniform(0, 10) for _ in range(100)]
    grid = stats.rolling_counts(events, start=0.0, stop=10.0, step=0.1)
    assert max(c for _, c in grid) <= stats.max_in_window(events)
    with pytest.raises(ValueError):
        stats.rolling_counts(times, start=0.0, stop=1.0, step=0.0)


# --------------------------------------------------------------------------- rates and drain


def test_mean_rate_counts_gaps() -> None:
    # 11 sends 0.05 s apart: 10 gaps in 0.5 s -> 20 per second.
    assert stats.mean_rate([i * 0.05 for i in range(11)]) == pytest.approx(20.0)
    assert stats.mean_rate([3.0, 1.0, 2.0]) == pytest.approx(1.0)
    assert stats.mean_rate([1.0]) is None
    assert stats.mean_rate([]) is None
    assert stats.mean_rate([2.0, 2.0]) is None


def test_drain_time_and_target() -> None:
    assert stats.drain_time(100.0, [101.0, 125.5, 110.0]) == pytest.approx(25.5)
    assert stats.drain_time(100.0, []) is None
    # The issue's figure: 500 registrations at >= 0.95 x 20/s drain in <= 26.3 s.
    assert stats.drain_target(500, 20.0) == pytest.approx(26.315789, rel=1e-6)
    assert stats.drain_target(500, 20.0, floor_ratio=1.0) == pytest.approx(25.0)
    with pytest.raises(ValueError):
        stats.drain_target(10, 0.0)


# --------------------------------------------------------------------------- accounting


def test_accounting_of_lost_duplicated_and_unexpected() -> None:
    expected = ["a@x.io", "b@x.io", "c@x.io", "d@x.io"]
    received = ["a@x.io", "B@X.io", "b@x.io", "b@x.io", "d@x.io", "stranger@x.io"]
    result = stats.account(expected, received)
    assert result == stats.Accounting(
        expected=4, delivered=3, lost=1, duplicated=1, extra_emails=2, unexpected=1
    )


def test_accounting_when_everything_arrives_once() -> None:
    emails = [f"u{i}@x.io" for i in range(50)]
    result = stats.account(emails, reversed(emails))
    assert (result.delivered, result.lost, result.duplicated, result.unexpected) == (50, 0, 0, 0)


def test_accounting_counts_an_expected_address_once() -> None:
    result = stats.account(["a@x.io", "A@x.io"], [])
    assert result.expected == 1
    assert result.lost == 1


def test_accounting_invariants_on_random_data() -> None:
    rng = random.Random(11)
    pool = [f"u{i}@x.io" for i in range(30)]
    for _ in range(200):
        expected = rng.sample(pool, rng.randint(0, 30))
        received = [rng.choice(pool) for _ in range(rng.randint(0, 60))]
        r = stats.account(expected, received)
        assert r.delivered + r.lost == r.expected
        assert 0 <= r.duplicated <= r.delivered
        assert r.extra_emails >= r.duplicated
        # every received email is a first delivery, an extra one or an unexpected one
        assert r.delivered + r.extra_emails + r.unexpected == len(received)


def test_time_to_inbox_uses_the_first_arrival() -> None:
    sent = {"a@x.io": 10.0, "b@x.io": 11.0, "c@x.io": 12.0}
    arrivals = [("b@x.io", 11.5), ("a@x.io", 13.0), ("A@x.io", 10.25), ("z@x.io", 1.0)]
    latencies = stats.first_arrival_latencies(sent, arrivals)
    assert sorted(latencies) == pytest.approx([0.25, 0.5])  # c never arrived: left out


# --------------------------------------------------------------------------- targets


def test_targets_pass_miss_and_unknown() -> None:
    at_most = Target("p99", "p99", "<=", 25)
    assert at_most.check({"p99": 25.0}) == ("PASS", 25.0, 25)
    assert at_most.check({"p99": 25.1})[0] == "MISS"
    assert at_most.check({"p99": None})[0] == "n/a"
    assert at_most.check({})[0] == "n/a"
    relative = Target("ack", "ack", "<=", limit_key="floor", factor=1.1)
    verdict, value, limit = relative.check({"ack": 1050.0, "floor": 1000.0})
    assert (verdict, value) == ("PASS", 1050.0)
    assert limit == pytest.approx(1100.0)
    assert relative.check({"ack": 1150.0, "floor": 1000.0})[0] == "MISS"
    assert relative.check({"ack": 1.0})[0] == "n/a"
    assert Target("rate", "rate", ">=", 19).check({"rate": 19.2})[0] == "PASS"
    assert Target("lost", "lost", "==", 0).check({"lost": 1.0})[0] == "MISS"


def test_spike_targets_hold_issue_18s_figures() -> None:
    by_key = {t.key: t for t in spike_targets({"register": 20.0})}
    run: dict[str, float | None] = {
        "ack_p99_ms": 8000.0,
        "floor_ms": 4000.0,
        "cpu_per_reg_ms": 50.0,
    }
    assert by_key["ack_p99_ms"].check(run)[0] == "PASS"
    assert by_key["ack_p99_ms"].check({**run, "ack_p99_ms": 8001.0})[0] == "MISS"
    assert by_key["cpu_per_reg_ms"].check(run)[0] == "PASS"
    assert by_key["cpu_per_reg_ms"].check({**run, "cpu_per_reg_ms": 50.1})[0] == "MISS"
    assert by_key["max_1s_register"].check({"max_1s_register": 21.0})[0] == "MISS"
