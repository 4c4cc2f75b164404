"""Several workers' Temporal SDK metrics merged into one valid exposition."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from api.scraped_metrics import merge_scraped

# What one worker's Temporal runtime served (PrometheusConfig), after one workflow with
# one activity: recorded from temporalio's own exporter, counters named without _total.
RECORDED = (Path(__file__).parent.parent / "data" / "temporal_sdk_metrics.txt").read_text()


def _series(text: str) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
    return [
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def test_two_workers_on_one_queue_make_one_valid_exposition() -> None:
    # Side by side, the two texts repeat every family and every series.
    side_by_side = _series(RECORDED + RECORDED)
    assert len({(n, labels) for n, labels, _ in side_by_side}) < len(side_by_side)

    merged = merge_scraped([("w1", RECORDED), ("w2", RECORDED)])
    headers = [line for line in merged.splitlines() if line.startswith("# TYPE ")]
    assert len(headers) == len(set(headers)), "a family's TYPE written twice"
    series = _series(merged)
    assert len({(n, labels) for n, labels, _ in series}) == len(series), "a series twice"
    assert len(series) == 2 * len(_series(RECORDED))  # nothing lost
    requests = [
        (dict(labels)["worker"], value)
        for name, labels, value in series
        if name == "temporal_request_total"
        and dict(labels).get("operation") == "StartWorkflowExecution"
    ]
    assert sorted(requests) == [("w1", 1.0), ("w2", 1.0)]
    # Counters under the conventional name, header and samples alike.
    assert "# TYPE temporal_request_total counter" in merged


def test_a_worker_whose_text_does_not_parse_is_named_and_left_out() -> None:
    merged = merge_scraped([("w1", RECORDED), ("w2", "temporal_request{oops 1\n")])
    assert "# worker metrics unreadable: w2" in merged
    workers = {dict(labels)["worker"] for _, labels, _ in _series(merged)}
    assert workers == {"w1"}
