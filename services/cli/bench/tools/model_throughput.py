"""Throughput of the model service alone (``streamml bench model``, part 1): vectors and their
labels pre-loaded then drained, or published while it runs a bounded amount ahead; the rates come
from the service's own counters, scraped from its ``/metrics``."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.cli.bench.scrape import by_label, load_average, scrape, total
from services.cli.bench.tools.child_process import exited, failure
from services.cli.bench.tools.model_process import (
    health,
    labels_learned,
    model_service,
    new_prefix,
    port_of,
)
from services.cli.bench.tools.model_vectors import VectorStream
from services.cli.bench.wire import fast_producer, produce
from services.common.kafka import ensure_topics
from services.common.settings import KafkaSettings


def plateau(series: list[dict[str, float]], field: str) -> dict[str, float]:
    """The first row at which ``field`` reached its final value."""
    final = series[-1][field]
    return next(row for row in series if row[field] >= final)


def per_second(first: dict[str, float], last: dict[str, float], field: str) -> float:
    """Growth of ``field`` per second from row ``first`` to row ``last``."""
    seconds = last["t"] - first["t"]
    return (last[field] - first[field]) / seconds if seconds > 0 else float("nan")


def settled(series: list[dict[str, float]], field: str, seconds: float) -> bool:
    """Whether ``field`` has not changed for ``seconds`` (and is not zero)."""
    return series[-1][field] > 0 and series[-1]["t"] - plateau(series, field)["t"] >= seconds


def drain(kafka: KafkaSettings, events: int, logs: Path, timeout: float, env: dict[str, str],
          ahead: int | None = None) -> dict[str, Any]:
    """Time the service predicting on ``events`` vectors and learning their labels.

    With ``ahead`` None everything is pre-loaded before the service starts; otherwise vectors and
    labels are published while it runs, at most ``ahead`` vectors beyond its predictions.
    """
    prefix = new_prefix()
    ensure_topics(kafka, prefix)
    stream = VectorStream(prefix[2:-1], datetime.now(UTC) - timedelta(hours=1))
    producer = fast_producer(kafka)
    published = 0

    def publish(upto: int) -> None:
        nonlocal published
        for index in range(published, upto):
            generated = stream.make(index)
            produce(producer, f"{prefix}features", generated.key, generated.value)
            key, value = stream.label(index, generated.clicked)
            produce(producer, f"{prefix}labels", key, value)
            producer.poll(0)
        published = upto

    began = time.monotonic()
    if ahead is None:
        publish(events)
        if producer.flush(120):
            raise RuntimeError("pre-loading did not finish")
    publish_seconds = time.monotonic() - began
    load_before = load_average()
    name = "preloaded" if ahead is None else "paced"
    process = model_service(kafka, prefix, logs / f"throughput-{name}.log", env).start()
    port = port_of(process)
    series: list[dict[str, float]] = []
    crashed: str | None = None
    final: dict[str, float] = {}
    try:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                final = scrape(port)
                checkpoints = float(health(port).get("checkpoints", 0))
            except OSError:
                if exited(process):
                    crashed = failure(process)
                    break
                raise
            consumed = by_label(final, "streamml_messages_consumed_total", "topic")
            series.append({
                "t": round(time.monotonic() - started, 3),
                "predictions": total(final, "streamml_model_predictions_total"),
                "learned": labels_learned(final),
                "features_consumed": consumed.get("features", 0.0),
                "labels_consumed": consumed.get("labels", 0.0),
                "checkpoints": checkpoints,
                "checkpoint_bytes": total(final, "streamml_model_checkpoint_bytes"),
            })
            if series[-1]["predictions"] >= events and settled(series, "learned", 3.0):
                break
            if ahead is not None and published < events:
                publish(min(events, int(series[-1]["predictions"]) + ahead))
                producer.flush(30)
            else:
                time.sleep(0.25)
        if crashed is None:
            time.sleep(2.5)  # the next checkpoint covers the end of the stream
            final = scrape(port)
    finally:
        process.stop()
        producer.flush(30)
    load_after = load_average()

    if not series:
        series.append(dict.fromkeys(("t", "predictions", "learned", "features_consumed",
                                     "labels_consumed", "checkpoints", "checkpoint_bytes"), 0.0))
    first = next((row for row in series if row["predictions"] > 0), series[0])
    done = plateau(series, "predictions")
    last = plateau(series, "learned")
    predictions_per_second = per_second(first, done, "predictions")
    span = last["t"] - first["t"]
    messages = (last["features_consumed"] + last["labels_consumed"]
                - first["features_consumed"] - first["labels_consumed"])
    checkpoints = last["checkpoints"] - first["checkpoints"]
    return {
        "mode": name, "ahead": ahead, "crashed": crashed,
        "events": events, "labels": events,
        "publish_seconds": round(publish_seconds, 2),
        "predictions": total(final, "streamml_model_predictions_total"),
        "models": sorted(by_label(final, "streamml_model_labels_learned_total", "model")),
        "labels_learned": labels_learned(final),
        "timed_out_learned": labels_learned(final, timed_out="true"),
        "label_anomalies": by_label(final, "streamml_model_label_anomalies_total", "kind"),
        "dead_letters": by_label(final, "streamml_dead_letters_published_total", "reason"),
        "predictions_per_second": predictions_per_second,
        "learns_per_second": per_second(first, last, "learned"), "measured_seconds": span,
        "labels_learned_while_streaming": last["learned"],
        "checkpoints_while_streaming": checkpoints,
        "checkpoints_per_second": checkpoints / span if span > 0 else float("nan"),
        "messages_per_checkpoint": messages / checkpoints if checkpoints else float("nan"),
        "max_checkpoint_bytes": max((row["checkpoint_bytes"] for row in series), default=0.0),
        "checkpoint_bytes": total(final, "streamml_model_checkpoint_bytes"),
        "pending_at_end": total(final, "streamml_model_pending_events"),
        "load_average_before": load_before, "load_average_after": load_after,
        "series": series,
    }
