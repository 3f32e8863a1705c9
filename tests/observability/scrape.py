"""Reading ``/metrics`` as a test does: every sample by name and labels."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import requests
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(base_url: str, token: str | None = None) -> Samples:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = requests.get(f"{base_url}/metrics", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    samples: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def scrape_when(
    base_url: str, ready: Callable[[Samples], bool], token: str | None = None
) -> Samples:
    """A scrape once ``ready`` holds (or after 5 s): a request's metrics are
    recorded just after its answer is sent, so a client may be faster."""
    deadline = time.monotonic() + 5
    while True:
        samples = scrape(base_url, token)
        if ready(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def names(samples: Mapping[tuple[str, frozenset[tuple[str, str]]], float]) -> set[str]:
    return {n for n, _ in samples}
