"""Benchmark of the model service alone, on the local broker (built-in ``clicks`` spec).

Feature vectors (``schemas.features.FeatureVector``, keyed by their ``user`` entity like the
features service keys them) and labels (keyed by ``event_id``) are published straight to
``<prefix>features`` and ``<prefix>labels`` under a fresh topic prefix; no features service runs.
Event times are 1 ms apart; the label of event *j* is stamped just after event *j + 10*, so labels
are learned in the stream, ten events behind the predictions.

1. Throughput, twice: (a) N vectors and their N labels are published *before* the service
   starts, then one ``python -m services.model`` drains them (a backlog, as after downtime);
   (b) the same while the service runs, never more than ``--ahead`` vectors beyond its
   predictions (a saturated live stream). Predictions/s and learns/s come from the service's own
   counters (``streamml_model_predictions_total``, ``streamml_model_labels_learned_total``),
   scraped from its ``/metrics`` every ~0.25 s: the count gained between the first scrape that
   saw a prediction and the scrape at which the count stopped growing, divided by the time
   between the two. Every model of the spec (``clicks``: champion ``logreg`` and challenger
   ``tree``) predicts on every vector and learns every label; only the champion's prediction is
   published and counted, and a label counts once (the most labels any one model learned).
   Outputs become visible to ``read_committed`` readers only in checkpoint transactions, so
   counting them on the output topics would measure the commit interval as much as the service.
   The labels stamped after the newest vector the service has stepped to are learned only once
   the stream has been quiet for ``label_hold_seconds`` (30 s); they are not waited for. Also
   reported: checkpoints per second and messages processed per checkpoint (``/health``), the
   largest checkpoint, label anomalies and dead letters.
2. Latency at a steady rate: with the service running (and warmed up: its partitions assigned),
   vectors are published at R/s for S seconds (with their labels, so it learns as it goes). For
   each prediction read back from ``<prefix>predictions``:

   * service latency: ``predicted_at - features_at``, the service's own time from reading the
     vector to producing its prediction;
   * publish -> visible: the wall time a ``read_committed`` consumer read the prediction minus
     the time the vector was published. It includes the broker round trips and, above all, the
     wait for the checkpoint transaction that makes the prediction visible, which commits every
     ``commit_interval_seconds`` (1 s by default): expect roughly half of it at p50 and all of it
     at p99.

The size of the last checkpoint (``streamml_model_checkpoint_bytes``) is reported for every run.
If the service dies, the table says so with the last error of its log. ``--kafka-extra`` passes
extra librdkafka settings to the service (``STREAMML_KAFKA__EXTRA``).
Prints a Markdown table and writes JSON to ``bench/results/model.json``.

Run: ``.venv/bin/python scripts/bench_model.py [--events 50000] [--ahead 5000] [--rate 500]
[--seconds 20]`` (needs the local broker: ``.venv/bin/streamml kafka start``).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from schemas.codec import decode, encode
from schemas.events import Label
from schemas.features import FeatureVector
from schemas.predictions import Prediction
from services.cli.bench.scrape import by_label, load_average, scrape, total
from services.cli.bench.stats import percentile
from services.cli.bench.wire import fast_producer, produce
from services.cli.process import ServiceProcess
from services.common.kafka import ensure_topics, make_consumer, make_producer
from services.common.settings import KafkaSettings

RESULTS = Path("bench/results/model.json")
SPEC = "clicks"
LABEL_LAG = 10
"""The label of event j is stamped just after event j + LABEL_LAG."""

DEVICES = ("mobile", "desktop", "tablet")


# -- synthetic input ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Generated:
    """One vector (encoded), its partition key, and its label."""

    vector: FeatureVector
    key: bytes
    value: bytes
    clicked: bool


class VectorStream:
    """Plausible ``clicks`` feature vectors with event times ``spacing_ms`` apart.

    Raw fields device, hour, price, position; aggregates user_events_5m, user_mean_price_5m,
    item_events_10m_hop, item_last_price. A hidden logistic rule decides the click, so the model
    has something to learn.
    """

    def __init__(self, run: str, start: datetime, spacing_ms: float = 1.0, seed: int = 11,
                 users: int = 2000, items: int = 200) -> None:
        self.run = run
        self.start = start
        self.spacing = timedelta(milliseconds=spacing_ms)
        self._rng = random.Random(seed)  # noqa: S311 - synthetic data, not crypto
        self._users = users
        self._items = items
        self._last_price: dict[int, float] = {}

    def event_time(self, index: int) -> datetime:
        """The event time of vector ``index``."""
        return self.start + index * self.spacing

    def event_id(self, index: int) -> str:
        return f"bm-{self.run}-{index}"

    def make(self, index: int, event_time: datetime | None = None) -> Generated:
        """Vector ``index`` (at ``event_time``, default ``start + index * spacing``)."""
        rng = self._rng
        when = self.event_time(index) if event_time is None else event_time
        user, item = rng.randrange(self._users), rng.randrange(self._items)
        device = rng.choices(DEVICES, weights=(6, 3, 1))[0]
        price = round(min(9999.0, rng.lognormvariate(3.0, 1.0)), 2)
        position = rng.randint(1, 50)
        user_events = rng.randint(0, 30)
        last_price = self._last_price.get(item)
        self._last_price[item] = price
        features: dict[str, float | str | None] = {
            "device": device, "hour": float(when.hour), "price": price,
            "position": float(position), "user_events_5m": float(user_events),
            "user_mean_price_5m": (round(price * rng.uniform(0.5, 1.5), 2)
                                   if user_events else None),
            "item_events_10m_hop": float(rng.randint(0, 400)), "item_last_price": last_price,
        }
        now = datetime.now(UTC)
        vector = FeatureVector(
            event_id=self.event_id(index), event_time=when,
            entity={"user": f"u{user}", "item": f"i{item}"}, features=features,
            ingested_at=now, computed_at=now,
        )
        score = -1.0 + (0.8 if device == "mobile" else 0.0) - 0.06 * position \
            - 0.004 * price + 0.02 * user_events
        clicked = rng.random() < 1.0 / (1.0 + math.exp(-score))
        return Generated(vector, f"u{user}".encode(), encode(vector), clicked)

    def label(self, index: int, clicked: bool) -> tuple[bytes, bytes]:
        """(key, value) of the label of vector ``index``: stamped 0.5 ms after vector
        ``index + LABEL_LAG``."""
        label = Label(event_id=self.event_id(index),
                      label_time=self.event_time(index + LABEL_LAG) + timedelta(microseconds=500),
                      label=clicked)
        return label.event_id.encode(), encode(label)


# -- Kafka and the service ----------------------------------------------------------------------


def new_prefix() -> str:
    return f"bm{uuid.uuid4().hex[:8]}-"


def model_service(kafka: KafkaSettings, prefix: str, log: Path,
                  extra: dict[str, str] | None = None) -> ServiceProcess:
    """``python -m services.model`` on the ``clicks`` spec under ``prefix`` (not started);
    ``extra`` adds environment variables (``STREAMML_MODEL__*``, ``STREAMML_KAFKA__EXTRA``)."""
    return ServiceProcess("services.model", {
        "STREAMML_TOPIC_PREFIX": prefix,
        "STREAMML_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "STREAMML_SPEC": SPEC, "STREAMML_LOG_LEVEL": "WARNING", **(extra or {}),
    }, log)


def service_pid(process: ServiceProcess) -> int | None:
    """The pid of the running service, or None once it has exited."""
    child = process._process  # read-only peek: ServiceProcess keeps its Popen private
    if child is None or child.poll() is not None:
        return None
    return child.pid


def exited(process: ServiceProcess, within: float = 10.0) -> bool:
    """Whether the service exits within ``within`` seconds (after its metrics stopped)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if service_pid(process) is None:
            return True
        time.sleep(0.1)
    return False


def failure(process: ServiceProcess) -> str:
    """The last error line of a service that exited on its own (its exit code otherwise)."""
    child = process._process
    code = None if child is None else child.poll()
    lines = process.log.read_text(errors="replace").splitlines() if process.log.exists() else []
    errors = [line for line in lines if "Error" in line or "Exception" in line]
    return f"exit code {code}: {errors[-1] if errors else '(no error in the log)'}"


def labels_learned(samples: dict[str, float], **labels: str) -> float:
    """Labels learned: every model learns each label, so the most any one model learned."""
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    chosen = {key: value for key, value in samples.items() if all(w in key for w in wanted)}
    return max(by_label(chosen, "streamml_model_labels_learned_total", "model").values(),
               default=0.0)


def health(port: int) -> dict[str, Any]:
    """The service's ``/health`` details (``checkpoints``, ``pending``, ...)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        document: dict[str, Any] = orjson.loads(response.read())
    details = document.get("details", document)
    return details if isinstance(details, dict) else {}


def port_of(process: ServiceProcess) -> int:
    if process.metrics_port is None:
        raise RuntimeError("the service announced no metrics port")
    return process.metrics_port


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


def wait_for(port: int, name: str, at_least: float, timeout: float) -> float:
    """Poll metric ``name`` until it reaches ``at_least``; return its last value."""
    deadline = time.monotonic() + timeout
    value = 0.0
    while time.monotonic() < deadline:
        value = total(scrape(port), name)
        if value >= at_least:
            break
        time.sleep(0.2)
    return value


# -- 1. throughput ------------------------------------------------------------------------------


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


# -- 2. latency ---------------------------------------------------------------------------------


def read_predictions(kafka: KafkaSettings, topic: str, wanted: set[str], timeout: float,
                     ready: threading.Event) -> list[tuple[float, Prediction]]:
    """(wall time read, prediction) for the predictions of ``wanted`` events, read_committed."""
    consumer = make_consumer(kafka, f"bench-{uuid.uuid4().hex[:8]}", **{"fetch.wait.max.ms": 5})
    consumer.subscribe([topic], on_assign=lambda consumer, partitions: ready.set())
    got: list[tuple[float, Prediction]] = []
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(seen) < len(wanted) and time.monotonic() < deadline:
            message = consumer.poll(0.05)
            if message is None or message.error() is not None:
                continue
            arrived = time.time()
            prediction = decode(Prediction, message.value())
            if prediction.event_id in wanted and prediction.event_id not in seen:
                seen.add(prediction.event_id)
                got.append((arrived, prediction))
    finally:
        consumer.close()
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


# -- report -------------------------------------------------------------------------------------


def print_table(drains: list[dict[str, Any]], lat: dict[str, Any] | None) -> None:
    """The Markdown table of one benchmark run."""
    models = ", ".join(next((t["models"] for t in drains if t["models"]), []))
    print(f"| model service alone ({SPEC} spec; models: {models}) | value |")
    print("|---|---|")
    for run in [*drains, lat]:
        if run is not None and run["crashed"]:
            print(f"| **the service died** ({run.get('mode', 'latency')} run) | "
                  f"{run['crashed']} |")
    for t in drains:
        how = ("pre-loaded, then drained" if t["ahead"] is None
               else f"published while running, <= {t['ahead']} ahead")
        what = f"{t['events']} vectors + {t['labels']} labels, {how}"
        print(f"| {what}: predictions/s | {t['predictions_per_second']:.0f} |")
        print(f"| {what}: learns/s | {t['learns_per_second']:.0f} |")
        print(f"| {what}: checkpoints/s, messages per checkpoint | "
              f"{t['checkpoints_per_second']:.2f}, {t['messages_per_checkpoint']:.0f} |")
        print(f"| {what}: largest / last checkpoint | {t['max_checkpoint_bytes'] / 1024:.0f} / "
              f"{t['checkpoint_bytes'] / 1024:.0f} KiB |")
        anomalies = {k: v for k, v in t["label_anomalies"].items() if v}
        print(f"| {what}: labels learned, of which timed out; anomalies | "
              f"{t['labels_learned']:.0f}, {t['timed_out_learned']:.0f}; {anomalies or 'none'} |")
        print(f"| {what}: load average before / after | {t['load_average_before'][0]} / "
              f"{t['load_average_after'][0]} |")
    if lat is not None:
        at = f"at {lat['rate']:.0f} vectors/s"
        print(f"| feature vector -> prediction in the service {at}, p50 / p99 | "
              f"{lat['service_p50_ms']:.2f} / {lat['service_p99_ms']:.2f} ms |")
        print(f"| publish -> prediction visible (read_committed) {at}, p50 / p99 | "
              f"{lat['publish_to_visible_p50_ms']:.0f} / {lat['publish_to_visible_p99_ms']:.0f}"
              " ms |")
        print(f"| predictions read / published | {lat['predictions_read']} / "
              f"{lat['published']} |")
        print(f"| checkpoint after the latency run | {lat['checkpoint_bytes'] / 1024:.0f} KiB |")
        print(f"| latency run: load average before / after | {lat['load_average_before'][0]} / "
              f"{lat['load_average_after'][0]} |")
    print("\npublish -> visible includes the wait for the checkpoint transaction "
          "(commit_interval_seconds, 1 s by default) that makes a prediction readable.")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000,
                        help="vectors (and as many labels) for the throughput runs")
    parser.add_argument("--ahead", type=int, default=5_000,
                        help="paced throughput run: publish at most this many vectors beyond "
                        "the service's predictions (0: skip the paced run)")
    parser.add_argument("--rate", type=float, default=500.0, help="vectors/s in the latency run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the latency run")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="give up a throughput run after this many seconds")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument("--skip-preloaded", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--kafka-extra", default=None, metavar="JSON",
                        help="extra librdkafka settings for the service, as JSON "
                        "(STREAMML_KAFKA__EXTRA)")
    args = parser.parse_args()
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap)
    env = {} if args.kafka_extra is None else {"STREAMML_KAFKA__EXTRA": args.kafka_extra}
    logs = Path(tempfile.mkdtemp(prefix="bench-model-"))
    drains = []
    if not args.skip_preloaded:
        drains.append(drain(kafka, args.events, logs, args.timeout, env))
    if args.ahead > 0:
        drains.append(drain(kafka, args.events, logs, args.timeout, env, ahead=args.ahead))
    lat = None if args.skip_latency else latency(kafka, args.rate, args.seconds, logs, env)
    figures = {
        "when": datetime.now(UTC).isoformat(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, python {sys.version.split()[0]}",
        "spec": SPEC, "service_env": env, "throughput": drains, "latency": lat,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    print_table(drains, lat)
    print(f"saved {args.output}; service logs in {logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
