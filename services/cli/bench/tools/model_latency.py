"""Latency of the model service alone (``streamml bench model``, part 2): vectors published at a
steady rate to a warmed-up service, each prediction read back ``read_committed``."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas.codec import encode
from schemas.events import Label
from schemas.predictions import Prediction
from services.cli.bench.scrape import load_average, scrape, total
from services.cli.bench.stats import percentile
from services.cli.bench.tools.child_process import failure, service_pid
from services.cli.bench.tools.model_process import (
    labels_learned,
    model_service,
    new_prefix,
    port_of,
    wait_for,
)
from services.cli.bench.tools.model_vectors import LABEL_LAG, VectorStream
from services.cli.bench.tools.topic_reader import read_topic
from services.cli.bench.wire import produce
from services.common.kafka import ensure_topics, make_producer
from services.common.settings import KafkaSettings


def read_predictions(kafka: KafkaSettings, topic: str, wanted: set[str], timeout: float,
                     ready: threading.Event) -> list[tuple[float, Prediction]]:
    """(wall time read, prediction) for the predictions of ``wanted`` events, read_committed."""
    got: list[tuple[float, Prediction]] = []
    seen: set[str] = set()

    def take(arrived: float, prediction: Prediction) -> None:
        if prediction.event_id in wanted and prediction.event_id not in seen:
            seen.add(prediction.event_id)
            got.append((arrived, prediction))

    read_topic(kafka, topic, Prediction, take, lambda: len(seen) >= len(wanted), timeout,
               group="bench", poll_seconds=0.05, assigned=ready,
               config={"fetch.wait.max.ms": 5})
    return got


def latency(kafka: KafkaSettings, rate: float, seconds: float, logs: Path,
            env: dict[str, str]) -> dict[str, Any]:
    """Publish vectors (and their labels) at ``rate``/s for ``seconds`` to a running service."""
    prefix = new_prefix()
    ensure_topics(kafka, prefix)
    process = model_service(kafka, prefix, logs / "latency.log", env).start()
    port = port_of(process)
    producer = make_producer(kafka, **{"linger.ms": 0})
    stream = VectorStream(prefix[2:-1], datetime.now(UTC), seed=12)
    warmup = max(1, int(rate))
    count = int(rate * seconds)
    published: dict[str, float] = {}
    clicked: dict[int, bool] = {}
    result: list[list[tuple[float, Prediction]]] = []
    load_before = load_average()
    try:
        # Warm-up: until the service has its partitions and has predicted on these vectors.
        for index in range(warmup):
            generated = stream.make(index, datetime.now(UTC))
            produce(producer, f"{prefix}features", generated.key, generated.value)
        producer.flush(30)
        wait_for(port, "streamml_model_predictions_total", warmup, timeout=120)

        wanted = {stream.event_id(warmup + n) for n in range(count)}
        assigned = threading.Event()
        reader = threading.Thread(target=lambda: result.append(read_predictions(
            kafka, f"{prefix}predictions", wanted, seconds + 60, assigned)))
        reader.start()
        assigned.wait(30)
        began = time.monotonic()
        for n in range(count):
            pause = began + n / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            index = warmup + n
            generated = stream.make(index, datetime.now(UTC))
            clicked[index] = generated.clicked
            published[generated.vector.event_id] = time.time()
            produce(producer, f"{prefix}features", generated.key, generated.value)
            if n >= LABEL_LAG:  # the label of the vector published LABEL_LAG ticks ago
                earlier = index - LABEL_LAG
                label = Label(event_id=stream.event_id(earlier), label_time=datetime.now(UTC),
                              label=clicked.pop(earlier))
                produce(producer, f"{prefix}labels", label.event_id.encode(), encode(label))
            producer.poll(0)
        producer.flush(30)
        publish_seconds = time.monotonic() - began
        reader.join()
        time.sleep(1.5)
        try:
            final = scrape(port)
        except OSError:
            final = {}
    finally:
        crashed = None if service_pid(process) is not None else failure(process)
        process.stop()
    load_after = load_average()
    predictions = result[0] if result else []
    inside = [(p.predicted_at - p.features_at).total_seconds() * 1000 for _, p in predictions]
    visible = [(arrived - published[p.event_id]) * 1000 for arrived, p in predictions]
    return {
        "crashed": crashed, "rate": rate, "seconds": seconds, "published": count,
        "achieved_rate": count / publish_seconds if publish_seconds > 0 else float("nan"),
        "predictions_read": len(predictions),
        "service_p50_ms": percentile(inside, 0.5), "service_p99_ms": percentile(inside, 0.99),
        "service_max_ms": max(inside, default=float("nan")),
        "publish_to_visible_p50_ms": percentile(visible, 0.5),
        "publish_to_visible_p99_ms": percentile(visible, 0.99),
        "publish_to_visible_max_ms": max(visible, default=float("nan")),
        "labels_learned": labels_learned(final),
        "checkpoint_bytes": total(final, "streamml_model_checkpoint_bytes"),
        "load_average_before": load_before, "load_average_after": load_after,
    }
