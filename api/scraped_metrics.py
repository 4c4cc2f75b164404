"""The Temporal SDK metrics of the workers, as one valid Prometheus exposition.

Each worker serves its own (``WORKER_METRICS_PORT``); ``/metrics`` reads them all.  Put
side by side they would repeat every family's ``# HELP``/``# TYPE`` and, for workers on
the same queue, carry the same series twice with different values, which a Prometheus
scrape refuses as a whole.  So the families are merged, each sample labelled with the
worker it came from (``worker``: its metrics endpoint), and written once.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

WORKER_LABEL = "worker"


def merge_scraped(scraped: Iterable[tuple[str, str]]) -> str:
    """``scraped``: (worker, exposition text) pairs; the merged exposition text.  A text
    that does not parse is left out (and named in a comment): one broken worker endpoint
    must not make the whole scrape invalid."""
    families: dict[str, Metric] = {}
    broken: list[str] = []
    for worker, text in scraped:
        try:
            parsed = list(text_string_to_metric_families(text))
        except ValueError:
            broken.append(worker)
            continue
        for family in parsed:
            merged = families.get(family.name)
            if merged is None:
                merged = Metric(family.name, family.documentation, family.type, family.unit)
                families[family.name] = merged
            merged.samples.extend(
                sample._replace(labels={**sample.labels, WORKER_LABEL: worker})
                for sample in family.samples
            )
    notes = "".join(f"# worker metrics unreadable: {worker}\n" for worker in broken)
    return notes + "".join(_exposition(family) for family in families.values())


def _exposition(family: Metric) -> str:
    """One family in the text format.  The parser names a counter's samples
    ``<name>_total`` (the SDK writes them without the suffix), so the header takes the
    same name: prometheus_client's own writer would not match them up for a counter
    read this way."""
    names = {sample.name for sample in family.samples}
    header = family.name
    if family.type == "counter" and names == {f"{family.name}_total"}:
        header = f"{family.name}_total"
    kind = {"unknown": "untyped"}.get(family.type, family.type)
    doc = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
    lines = [f"# HELP {header} {doc}\n", f"# TYPE {header} {kind}\n"]
    for sample in family.samples:
        labels = ",".join(
            f'{name}="{_escape(value)}"' for name, value in sorted(sample.labels.items())
        )
        value = floatToGoString(sample.value)  # type: ignore[no-untyped-call]
        lines.append(f"{sample.name}{{{labels}}} {value}\n")
    return "".join(lines)


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
