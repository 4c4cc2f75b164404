"""Prometheus metrics.  API and workers write them; with ``PROMETHEUS_MULTIPROC_DIR`` set
(``authflow dev`` sets it) the API's ``/metrics`` shows every local process's figures."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram

from authflow.policies import EmailKind

EMAILS_SENT = Counter("authflow_emails_sent_total", "Emails accepted by SMTP", ["kind"])
EMAILS_FAILED = Counter("authflow_emails_failed_total", "Failed send attempts", ["kind", "reason"])
EMAILS_RETRIED = Counter(
    "authflow_emails_retried_total", "Emails delivered after at least one retry", ["kind"]
)
TIME_TO_SMTP = Histogram(
    "authflow_email_time_to_smtp_seconds",
    "From request accepted to SMTP accepted",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
)
REQUEST_LATENCY = Histogram(
    "authflow_http_request_duration_seconds",
    "API request latency",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# Why a send attempt failed (the ``reason`` label of EMAILS_FAILED).
FAILURE_REASONS = ("transient", "throttled", "permanent")


def _declare_series() -> None:
    """Every kind's failure and retry series exist at 0 from the start: an alert on
    ``rate(authflow_emails_failed_total[5m])`` then has a series to watch before the
    first failure, instead of "no data"."""
    for kind in EmailKind:
        EMAILS_RETRIED.labels(kind.value)
        for reason in FAILURE_REASONS:
            EMAILS_FAILED.labels(kind.value, reason)


_declare_series()


def record_delivered(kind: str, requested_at: float, attempt: int) -> None:
    EMAILS_SENT.labels(kind).inc()
    if attempt > 1:
        EMAILS_RETRIED.labels(kind).inc()
    TIME_TO_SMTP.labels(kind).observe(max(0.0, time.time() - requested_at))
