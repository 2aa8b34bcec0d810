"""Benchmark of the features service alone, on the local broker.

1. Throughput: N events are published first, then one worker starts and drains them; events/s is
   N divided by the time from the first to the last feature vector.
2. Latency at a steady rate: events published at R events/s to a running worker; for each vector,
   the processing latency inside the service (``computed_at - ingested_at``) and the time from
   publishing the event to reading its vector (publish -> features topic).

Prints a table and writes JSON to ``bench/results/features.json``.
Run: ``.venv/bin/python scripts/bench_features.py [--events 20000] [--rate 500] [--seconds 20]``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from schemas.codec import decode
from schemas.features import FeatureVector
from services.cli.process import ServiceProcess
from services.common.kafka import ensure_topics, make_consumer
from services.common.settings import KafkaSettings, Settings
from services.producer.client import EventClient
from services.producer.scenarios.clicks import ClicksScenario

RESULTS = Path("bench/results/features.json")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def read_vectors(kafka: KafkaSettings, topic: str, count: int, timeout: float) -> list[
    tuple[float, FeatureVector]
]:
    """(arrival wall time, vector) for ``count`` vectors, or as many as arrive by the deadline."""
    consumer = make_consumer(kafka, f"bench-{uuid.uuid4().hex[:8]}", **{"fetch.wait.max.ms": 5})
    consumer.subscribe([topic])
    got: list[tuple[float, FeatureVector]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        message = consumer.poll(0.05)
        if message is None or message.error() is not None:
            continue
        got.append((time.time(), decode(FeatureVector, message.value())))
    consumer.close()
    return got


def worker(kafka: KafkaSettings, prefix: str, log: Path) -> ServiceProcess:
    return ServiceProcess("services.features", {
        "STREAMML_TOPIC_PREFIX": prefix, "STREAMML_KAFKA__BOOTSTRAP_SERVERS":
        kafka.bootstrap_servers, "STREAMML_LOG_LEVEL": "WARNING",
    }, log)


def throughput(kafka: KafkaSettings, events: int, logs: Path) -> dict[str, float]:
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    ensure_topics(kafka, prefix)
    client = EventClient.connect(Settings(kafka=kafka, topic_prefix=prefix), "user")
    start = datetime.now(UTC) - timedelta(minutes=10)
    for n, labelled in enumerate(ClicksScenario(seed=3).events(start, 0.01)):
        if n >= events:
            break
        client.publish_event(labelled.event)
    client.flush()
    process = worker(kafka, prefix, logs / "throughput.log").start()
    try:
        vectors = read_vectors(kafka, f"{prefix}features", events, timeout=600)
    finally:
        process.stop()
    arrivals = [arrival for arrival, _ in vectors]
    seconds = max(arrivals) - min(arrivals)
    return {"events": float(len(vectors)), "seconds": seconds,
            "events_per_second": len(vectors) / seconds if seconds > 0 else float("nan")}


def latency(kafka: KafkaSettings, rate: float, seconds: float, logs: Path) -> dict[str, float]:
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    ensure_topics(kafka, prefix)
    process = worker(kafka, prefix, logs / "latency.log").start()
    count = int(rate * seconds)
    published: dict[str, float] = {}
    try:
        client = EventClient.connect(Settings(kafka=kafka, topic_prefix=prefix), "user")
        scenario = ClicksScenario(seed=4).events(datetime.now(UTC), 1.0 / rate)
        began = time.monotonic()

        result: list[list[tuple[float, FeatureVector]]] = []
        reader = threading.Thread(target=lambda: result.append(
            read_vectors(kafka, f"{prefix}features", count, timeout=seconds + 60)))
        reader.start()
        for n, labelled in enumerate(scenario):
            if n >= count:
                break
            pause = began + n / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            published[labelled.event.event_id] = time.time()
            client.publish_event(labelled.event)
        client.flush()
        reader.join()
    finally:
        process.stop()
    vectors = result[0]
    inside = [(v.computed_at - v.ingested_at).total_seconds() * 1000 for _, v in vectors]
    through = [(arrival - published[v.event_id]) * 1000 for arrival, v in vectors
               if v.event_id in published]
    return {
        "rate": rate, "vectors": float(len(vectors)),
        "processing_p50_ms": statistics.median(inside),
        "processing_p99_ms": percentile(inside, 0.99),
        "publish_to_vector_p50_ms": statistics.median(through),
        "publish_to_vector_p99_ms": percentile(through, 0.99),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    args = parser.parse_args()
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap)
    logs = Path(tempfile.mkdtemp(prefix="bench-features-"))
    spec = "clicks (2 entity stages: user, item)"
    t = throughput(kafka, args.events, logs)
    lat = latency(kafka, args.rate, args.seconds, logs)
    figures = {
        "when": datetime.now(UTC).isoformat(),
        "machine": f"{platform.machine()} python {sys.version.split()[0]}",
        "spec": spec, "throughput": t, "latency": lat,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    print(f"| features service ({spec}) | value |")
    print("|---|---|")
    print(f"| drain {t['events']:.0f} events | {t['events_per_second']:.0f} events/s |")
    print(f"| processing latency at {lat['rate']:.0f} ev/s, p50 / p99 | "
          f"{lat['processing_p50_ms']:.1f} / {lat['processing_p99_ms']:.1f} ms |")
    print(f"| publish -> feature vector at {lat['rate']:.0f} ev/s, p50 / p99 | "
          f"{lat['publish_to_vector_p50_ms']:.1f} / {lat['publish_to_vector_p99_ms']:.1f} ms |")
    print(f"saved {RESULTS}; worker logs in {logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
