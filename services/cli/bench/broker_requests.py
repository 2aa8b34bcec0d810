"""Kafka requests the broker served, by kind: what a run costs the broker per event.

A broker pays per request, not per record: fewer, larger produce and fetch requests are what
batching buys. The counts come from the broker's own ``RequestsPerSec`` meters, read over JMX
by ``BrokerRequests.java`` (run with the JDK's source launcher, attached to the broker's pid;
nothing to configure on the broker).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

READER = Path(__file__).with_name("BrokerRequests.java")


def request_counts(pid: int, timeout: float = 60.0) -> dict[str, int] | None:
    """Requests served by the broker with pid ``pid`` since it started, by kind (``Produce``,
    ``Fetch``, ...); None when they cannot be read (no JDK, another user's process, ...)."""
    java = shutil.which("java")
    if java is None:
        return None
    try:
        result = subprocess.run(  # noqa: S603 - fixed argv
            [java, str(READER), str(pid)], capture_output=True, text=True, timeout=timeout,
            check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return parse_counts(result.stdout)


def parse_counts(text: str) -> dict[str, int]:
    """``"<request> <count>"`` lines as a dict; other lines are skipped."""
    counts: dict[str, int] = {}
    for line in text.splitlines():
        request, _, count = line.strip().partition(" ")
        if request and count.isdigit():
            counts[request] = int(count)
    return counts


def per_event(before: dict[str, int] | None, after: dict[str, int] | None,
              events: int) -> dict[str, float]:
    """Requests per event between two counts: ``total`` and the produce and fetch requests
    (``Fetch`` counts consumers and followers, ``FetchConsumer`` consumers only); empty when
    either count is missing or no event passed."""
    if before is None or after is None or events <= 0:
        return {}
    served = {kind: after.get(kind, 0) - before.get(kind, 0) for kind in after}
    total = sum(count for kind, count in served.items() if kind != "FetchConsumer")
    return {"total": round(total / events, 4),
            "produce": round(served.get("Produce", 0) / events, 4),
            "fetch": round(served.get("Fetch", 0) / events, 4)}
