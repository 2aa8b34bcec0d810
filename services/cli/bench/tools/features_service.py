"""Benchmark of the features service alone, on the local broker.

Every run uses a fresh topic prefix and starts one worker (``python -m services.features``).

1. Drain: N events are published first, then the worker starts and drains them; events/s is the
   number of vectors divided by the time from the first to the last vector read back; the
   worker's CPU per event is its CPU time over that same window (sampled every 20 ms) divided by
   the vectors (startup and table recovery left out), next to its CPU from start to the end.
2. Paced: the worker runs (partitions assigned) while events are published at R events/s for S
   seconds. For each vector (the first ``--warmup`` seconds are not counted):
   * processing: ``computed_at - ingested_at``, the service's own time from validating the event
     to emitting its vector (internal hops included);
   * publish -> vector: the wall time a consumer in another process reads the vector minus the
     time the event was handed to the producer (``linger.ms=2``): every broker round trip and
     fetch wait included.
   Also: the worker's CPU (user + system, both threads) over the window, and how long after the
   last publish the last vector arrived (a run above the sustainable rate leaves a backlog).

Each run is repeated ``--repeats`` times; the table shows medians, and the 1-minute load average
seen before and after the runs (the machine is shared: broker, publisher, reader and worker run
on it). Writes JSON with every run to ``bench/results/features.json`` (``--out``).

Run: ``.venv/bin/streamml bench features [--drain 50000] [--rates 500,1000,2000]
[--seconds 20] [--repeats 3] [--spec clicks]`` (local broker: ``.venv/bin/streamml kafka start``).
Events come from the clicks scenario, or, for a spec with a ``[source]`` section and a file
(``--data``, default ``data/<spec name>.csv`` if there is one), from the file's rows, cycled.
``--spec`` takes ``clicks`` (user and item aggregates), ``elec2`` (no aggregates, one market: a
single partition) or any spec the clicks events satisfy, e.g.
``tests/integration/specs/user_features.toml`` (user aggregates only).
``--env NAME=VALUE`` passes a setting to the worker, e.g.
``--env STREAMML_FEATURES__FETCH_MAX_WAIT_MS=20``.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from schemas.events import Event
from schemas.spec import PipelineSpec, load_spec
from services.cli.process import ServiceProcess
from services.common.kafka import ensure_topics, make_consumer
from services.common.settings import KafkaSettings, Settings
from services.producer.client import EventClient
from services.producer.replay import RowConverter, read_rows
from services.producer.scenarios.clicks import ClicksScenario

RESULTS = Path("bench/results/features.json")
Arrival = tuple[str, float, float]
"""(event id, wall time the vector was read, computed_at - ingested_at in ms)."""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _read(bootstrap: str, topic: str, count: int, timeout: float, out: Any) -> None:
    """Reader process: (event id, arrival, processing ms) of up to ``count`` vectors."""
    consumer = make_consumer(KafkaSettings(bootstrap_servers=bootstrap),
                             f"bench-{uuid.uuid4().hex[:8]}", **{"fetch.wait.max.ms": 5})
    consumer.subscribe([topic])
    got: list[Arrival] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        message = consumer.poll(0.05)
        if message is None or message.error() is not None:
            continue
        arrival = time.time()
        vector = orjson.loads(message.value() or b"{}")
        inside = (datetime.fromisoformat(vector["computed_at"])
                  - datetime.fromisoformat(vector["ingested_at"])).total_seconds() * 1000
        got.append((vector["event_id"], arrival, inside))
    consumer.close()
    out.send(got)


class Reader:
    """Reads ``features`` in another process, so the publisher does not delay its clock."""

    def __init__(self, kafka: KafkaSettings, topic: str, count: int, timeout: float) -> None:
        context = mp.get_context("spawn")
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_read, args=(kafka.bootstrap_servers, topic, count, timeout, send))
        self._process.start()

    def result(self, sample: Any = None) -> list[Arrival]:
        """The vectors read; ``sample()`` is called every 20 ms while waiting for them."""
        while sample is not None and not self._receive.poll(0.02):
            sample()
        got: list[Arrival] = self._receive.recv()
        self._process.join()
        return got


class Worker:
    """One features worker under a fresh prefix, with its CPU time read from /proc."""

    def __init__(self, kafka: KafkaSettings, prefix: str, spec: str, env: dict[str, str],
                 log: Path) -> None:
        self.process = ServiceProcess("services.features", {
            "STREAMML_TOPIC_PREFIX": prefix, "STREAMML_SPEC": spec,
            "STREAMML_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "STREAMML_LOG_LEVEL": "WARNING", **env,
        }, log)

    def cpu_seconds(self) -> float:
        process = self.process._process
        if process is None or process.poll() is not None:
            return float("nan")
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scenario(args: argparse.Namespace, seed: int, start: datetime,
             spacing: float) -> Iterator[Event]:
    """Events ``spacing`` seconds apart from ``start``: the spec's file rows, or clicks."""
    spec: PipelineSpec = args.loaded_spec
    data = args.data or Path("data") / f"{spec.name}.csv"
    if spec.source is None or not data.is_file():
        for labelled in ClicksScenario(seed=seed).events(start, spacing):
            yield labelled.event
        return
    converter = RowConverter(spec, str(data))
    rows = list(read_rows(data, converter.required_columns()))
    for cycle in itertools.count():
        for n, row in enumerate(rows):
            when = start + timedelta(seconds=spacing * (cycle * len(rows) + n))
            event, _ = converter.convert(row, when)
            yield event.model_copy(update={"event_id": f"{event.event_id}.{seed}.{cycle}"})


def drain(kafka: KafkaSettings, args: argparse.Namespace, logs: Path) -> dict[str, float]:
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    ensure_topics(kafka, prefix)
    client = EventClient.connect(Settings(kafka=kafka, topic_prefix=prefix), args.entity)
    start = datetime.now(UTC) - timedelta(minutes=10)
    for n, event in enumerate(scenario(args, 3, start, 0.01)):
        if n >= args.drain:
            break
        client.publish_event(event)
    client.flush()
    load = os.getloadavg()[0]
    worker = Worker(kafka, prefix, args.spec, args.env, logs / f"drain-{prefix}.log")
    reader = Reader(kafka, f"{prefix}features", args.drain, timeout=900)
    worker.process.start()
    cpu = worker.cpu_seconds()
    samples: list[tuple[float, float]] = []  # (wall time, worker CPU seconds)
    try:
        arrivals = [arrival for _, arrival, _ in reader.result(
            lambda: samples.append((time.time(), worker.cpu_seconds())))]
        samples.append((time.time(), worker.cpu_seconds()))
        cpu = worker.cpu_seconds() - cpu
    finally:
        worker.process.stop()
    seconds = max(arrivals) - min(arrivals) if arrivals else float("nan")
    # CPU while vectors came (first to last vector): startup and table recovery left out.
    window = [used for when, used in samples
              if arrivals and min(arrivals) <= when <= max(arrivals) + 0.02]
    draining = window[-1] - window[0] if len(window) > 1 else float("nan")
    return {"events": float(len(arrivals)), "seconds": seconds,
            "events_per_second": len(arrivals) / seconds if seconds > 0 else float("nan"),
            "worker_cpu_seconds": cpu,
            "worker_cpu_ms_per_event": (1000 * draining / len(arrivals) if arrivals
                                        else float("nan")),
            "load_before": load, "load_after": os.getloadavg()[0]}


def paced(kafka: KafkaSettings, args: argparse.Namespace, rate: float,
          logs: Path) -> dict[str, float]:
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    ensure_topics(kafka, prefix)
    worker = Worker(kafka, prefix, args.spec, args.env, logs / f"paced-{prefix}.log")
    worker.process.start()
    count = int(rate * args.seconds)
    published: dict[str, float] = {}
    load = os.getloadavg()[0]
    try:
        client = EventClient.connect(Settings(kafka=kafka, topic_prefix=prefix), args.entity)
        reader = Reader(kafka, f"{prefix}features", count, timeout=args.seconds + 120)
        time.sleep(2.0)  # the reader's consumer joins before the first vector
        cpu = worker.cpu_seconds()
        began = time.monotonic()
        for n, event in enumerate(scenario(args, 4, datetime.now(UTC), 1.0 / rate)):
            if n >= count:
                break
            pause = began + n / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            published[event.event_id] = time.time()
            client.publish_event(event)
        ended = time.time()
        offered = count / (time.monotonic() - began)
        cpu_window = time.monotonic() - began
        cpu = (worker.cpu_seconds() - cpu) / cpu_window
        client.flush()
        vectors = reader.result()
    finally:
        worker.process.stop()
    warm = min(published.values(), default=0.0) + args.warmup
    kept = [(arrival, inside, arrival - published[event_id]) for event_id, arrival, inside
            in vectors if event_id in published and published[event_id] >= warm]
    inside_ms = [inside for _, inside, _ in kept]
    through_ms = [through * 1000 for _, _, through in kept]
    last = max((arrival for _, arrival, _ in vectors), default=float("nan"))
    return {
        "rate": rate, "offered_rate": offered, "published": float(count),
        "vectors": float(len(vectors)), "worker_cpu_share": cpu,
        "processing_p50_ms": statistics.median(inside_ms) if inside_ms else float("nan"),
        "processing_p99_ms": percentile(inside_ms, 0.99),
        "publish_to_vector_p50_ms": statistics.median(through_ms) if through_ms else float("nan"),
        "publish_to_vector_p99_ms": percentile(through_ms, 0.99),
        "publish_to_vector_max_ms": max(through_ms, default=float("nan")),
        "last_vector_after_last_publish_s": last - ended,
        "load_before": load, "load_after": os.getloadavg()[0],
    }


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main(argv: Sequence[str] | None = None) -> int:
    """``streamml bench features [options]``: parse ``argv``, run, return the exit code."""
    parser = argparse.ArgumentParser(prog="streamml bench features",
                                     description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--drain", type=int, default=50_000, help="events; 0 skips the drain")
    parser.add_argument("--rates", default="500,1000,2000", help="events/s; empty skips")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--spec", default="clicks")
    parser.add_argument("--data", type=Path, default=None, help="rows for a spec with [source]")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.env = dict(item.split("=", 1) for item in args.env)
    args.loaded_spec = load_spec(args.spec)
    args.entity = args.loaded_spec.entity_keys[0]
    rates = [float(rate) for rate in args.rates.split(",") if rate.strip()]
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap)
    logs = Path(tempfile.mkdtemp(prefix="bench-features-"))
    drains: list[dict[str, float]] = []
    runs: dict[float, list[dict[str, float]]] = {rate: [] for rate in rates}
    for _ in range(args.repeats):
        if args.drain:
            drains.append(drain(kafka, args, logs))
        for rate in rates:
            runs[rate].append(paced(kafka, args, rate, logs))
    figures = {
        "when": datetime.now(UTC).isoformat(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus python {sys.version.split()[0]}",
        "spec": args.spec, "env": args.env, "repeats": args.repeats, "seconds": args.seconds,
        "drain": {"median": median_of(drains), "runs": drains} if drains else None,
        "paced": [{"rate": rate, "median": median_of(runs[rate]), "runs": runs[rate]}
                  for rate in rates],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    print(f"features service, spec {args.spec}, medians of {args.repeats} runs {args.env or ''}")
    if drains:
        d = median_of(drains)
        print(f"\ndrain {d['events']:.0f} events: {d['events_per_second']:.0f} events/s "
              f"(worker CPU {d['worker_cpu_seconds']:.1f} s, "
              f"{d['worker_cpu_ms_per_event']:.3f} ms/event while draining; "
              f"load {d['load_before']:.1f} -> {d['load_after']:.1f}; runs: "
              + ", ".join(f"{run['events_per_second']:.0f}" for run in drains) + ")")
    if rates:
        print("\n| rate ev/s | processing p50 / p99 ms | publish -> vector p50 / p99 / max ms "
              "| worker CPU | backlog at end s | load |")
        print("|---|---|---|---|---|---|")
    for rate in rates:
        m = median_of(runs[rate])
        print(f"| {rate:.0f} | {m['processing_p50_ms']:.1f} / {m['processing_p99_ms']:.1f} | "
              f"{m['publish_to_vector_p50_ms']:.1f} / {m['publish_to_vector_p99_ms']:.1f} / "
              f"{m['publish_to_vector_max_ms']:.0f} | {100 * m['worker_cpu_share']:.0f}% | "
              f"{m['last_vector_after_last_publish_s']:.2f} | "
              f"{m['load_before']:.1f} -> {m['load_after']:.1f} |")
    print(f"\nsaved {args.out}; worker logs in {logs}")
    return 0

