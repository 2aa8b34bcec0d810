"""The pipeline's drain: the whole stream loaded first, then the services started on it.

Under a fresh topic prefix, every event and label of the stream goes onto ``events`` and
``labels`` before any service runs: event *i* with event time ``t_i`` (1 ms apart, ending a
minute before the load, so none is in the future), its label right after event *i + N*
(``--label-delay N``) with label time half an interval after ``t_{i+N}``, so the model learns
in River's order (``delay = N + 1``) however the two topics interleave. Then the four services
start as :func:`~.stack_run.start_stack` does; once the model has counted a prediction for every
event (``streamml_model_predictions_total``, scraped every half second: no reader competes with
the services meanwhile), the predictions are read back and the drain rate between 10% and 90%
of the stream computed from their ``predicted_at`` (:func:`~.stats.drain_rate`), with the
champion's accuracy against the labels sent. This is what the peers (:mod:`.peers`) measure
too, on the same broker.
"""

from __future__ import annotations

import tempfile
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from schemas.events import LabelValue
from services.cli.bench.broker_requests import per_event, request_counts
from services.cli.bench.peers import figures, read_outputs
from services.cli.bench.scrape import cpu_seconds, load_average, scrape, total
from services.cli.bench.stack_run import RunningStack, delete_topics, start_stack, stop_stack
from services.cli.bench.wire import fast_producer, produce
from services.cli.bench.workload import Workload, event_bytes, label_bytes
from services.common.kafka import ensure_topics
from services.common.settings import KafkaSettings
from services.model.learner import Learner

INTERVAL = timedelta(milliseconds=1)
"""Event times of the preloaded stream are this far apart."""
STALL_SECONDS = 90.0
"""The drain gives up when the model's prediction count has not moved for this long."""


def event_times(events: int, now: datetime) -> list[datetime]:
    """``events`` event times ``INTERVAL`` apart, the last a minute before ``now``.

    >>> times = event_times(3, datetime(2026, 1, 1, tzinfo=UTC))
    >>> [t.isoformat() for t in times]  # doctest: +NORMALIZE_WHITESPACE
    ['2025-12-31T23:58:59.998000+00:00', '2025-12-31T23:58:59.999000+00:00',
     '2025-12-31T23:59:00+00:00']
    """
    last = now - timedelta(minutes=1)
    return [last - (events - 1 - index) * INTERVAL for index in range(events)]


def load_stream(kafka: KafkaSettings, prefix: str, workload: Workload, events: int,
                label_delay: int, run: str) -> dict[str, LabelValue]:
    """Put ``events`` events and their labels on the prefix's topics; the labels sent by id."""
    producer = fast_producer(kafka, linger_ms=20)
    primary = workload.spec.entity_keys[0]
    times = event_times(events, datetime.now(UTC))
    labels: dict[str, LabelValue] = {}
    waiting: deque[tuple[str, LabelValue]] = deque()

    def send_label(after: datetime) -> None:
        identifier, label = waiting.popleft()
        produce(producer, f"{prefix}labels", identifier.encode(),
                label_bytes(identifier, after + INTERVAL / 2, label))

    for index, row in zip(range(events), workload.rows(), strict=False):
        identifier = f"d{run}.{index}"
        produce(producer, f"{prefix}events", row.entity[primary].encode(),
                event_bytes(identifier, times[index], row))
        labels[identifier] = row.label
        waiting.append((identifier, row.label))
        while len(waiting) > label_delay:
            send_label(times[index])
        producer.poll(0)
    while waiting:
        send_label(times[-1])
    if producer.flush(120):
        raise RuntimeError("the broker did not acknowledge the preloaded stream")
    return labels


def decode_prediction(value: bytes) -> tuple[str, float, Any] | None:
    """A message of ``predictions``: (event id, ``predicted_at`` in seconds, prediction)."""
    document = orjson.loads(value)
    if not isinstance(document, dict) or "predicted_at" not in document:
        return None
    at = datetime.fromisoformat(document["predicted_at"]).timestamp()
    return str(document["event_id"]), at, document.get("prediction")


class CpuWindow:
    """CPU time of each process between the first count seen at or past 10% of ``expected``
    and the first at or past 90% (the window the drain rate is taken over): CPU per event
    without start-up (imports, table recovery) and stragglers."""

    def __init__(self, pids: dict[str, int], expected: int) -> None:
        self._pids = pids
        self._bounds = (0.1 * expected, 0.9 * expected)
        self._marks: list[tuple[float, dict[str, float | None]]] = []

    def on_count(self, count: float) -> None:
        """Called with each prediction count seen."""
        if len(self._marks) < 2 and count >= self._bounds[len(self._marks)]:
            self._marks.append((count, {name: cpu_seconds(pid)
                                        for name, pid in self._pids.items()}))

    def ms_per_event(self) -> dict[str, float]:
        """CPU milliseconds per prediction over the window, by process; empty if incomplete."""
        if len(self._marks) < 2 or self._marks[1][0] <= self._marks[0][0]:
            return {}
        (first, start), (last, end) = self._marks
        found: dict[str, float] = {}
        for name, before in start.items():
            after = end.get(name)
            if before is not None and after is not None:
                found[name] = round(1000 * (after - before) / (last - first), 4)
        return found


def wait_for_predictions(running: RunningStack, expected: int, timeout: float,
                         stall: float = STALL_SECONDS,
                         on_count: Callable[[float], None] = lambda count: None) -> float:
    """Scrape the model's prediction count until it reaches ``expected``, stops moving for
    ``stall`` seconds, or ``timeout`` passes; the last count seen. Every count seen goes to
    ``on_count``."""
    began = last_change = time.monotonic()
    seen = -1.0
    while time.monotonic() - began < timeout:
        try:
            count = total(scrape(running.port("model"), timeout=2.0),
                          "streamml_model_predictions_total")
        except OSError:
            count = seen
        on_count(count)
        if count >= expected:
            return count
        if count != seen:
            seen, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > stall:
            break
        time.sleep(0.5)
    return seen


def measure_drain(kafka: KafkaSettings, spec_arg: str, workload: Workload, events: int,
                  label_delay: int, run: str, keep_topics: bool = False,
                  say: Callable[[str], None] = print,
                  broker: int | None = None) -> dict[str, Any]:
    """Load the stream, start the services, wait for every prediction; the drain's figures
    (:func:`~.peers.figures`) with the load average before and after, the CPU per event of
    each service (and of the broker, given its pid ``broker``) over the 10%-90% window, and
    the broker's requests per event over the whole drain, start-up included."""
    prefix = f"bench{run}d-"
    home = Path(tempfile.mkdtemp(prefix="streamml-bench-drain-"))
    learner = Learner(workload.spec.models, workload.spec.label)
    ensure_topics(kafka, prefix)
    say(f"pipeline drain: loading {events:,} events and their labels under {prefix} ...")
    sent = load_stream(kafka, prefix, workload, events, label_delay, run)
    labels = {key: learner.normalise_label(value) for key, value in sent.items()}
    # every label may be read before its features: let the model hold them all
    extra = {"STREAMML_MODEL__EARLY_LABEL_CAPACITY": str(max(100_000, 2 * events))}
    load_before = load_average()
    requests_before = request_counts(broker) if broker else None
    say(f"pipeline drain: starting the services (logs in {home / 'logs'}) ...")
    running = start_stack(kafka, spec_arg, prefix, home, extra_env=extra)
    cpu = CpuWindow({**running.pids(), **({"broker": broker} if broker else {})}, events)
    try:
        counted = wait_for_predictions(running, events, timeout=120.0 + events / 20,
                                       on_count=cpu.on_count)
        requests_after = request_counts(broker) if broker else None
        load_after = load_average()
        restarts = running.restarts()
    finally:
        stop_stack(running)
    try:
        outputs = read_outputs(kafka.client_config(), f"{prefix}predictions", events, 60.0,
                               decode_prediction)
    finally:
        if not keep_topics:
            delete_topics(kafka, prefix)
    return {**figures(outputs, labels), "predictions_counted": counted, "prefix": prefix,
            "home": str(home), "restarts": restarts, "load_before": load_before,
            "load_after": load_after, "label_delay": label_delay,
            "cpu_ms_per_event": cpu.ms_per_event(),
            "requests_per_event": per_event(requests_before, requests_after, int(counted))}
