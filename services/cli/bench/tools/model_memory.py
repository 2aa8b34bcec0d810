"""Memory of the model service when labels never arrive (built-in ``clicks`` spec).

Feature vectors are published straight to ``<prefix>features`` (no labels at all) under a fresh
topic prefix, as fast as the model service takes them: in chunks, never more than ``--ahead``
vectors beyond its predictions (``streamml_model_predictions_total``). Every ``--sample-seconds``
the service's resident memory (``VmRSS`` and its peak ``VmHWM`` from ``/proc/<pid>/status``) is
read together with its metrics: predictions, ``streamml_model_pending_events``,
``streamml_model_pending_evicted_total``, timeouts learned, ``streamml_model_checkpoint_bytes``
and the number of checkpoints (``/health``).

Every event waits in the pending store for a label that never comes, until its feedback window
(30 s of event time) closes or, when the store is full (``STREAMML_MODEL__PENDING_CAPACITY``,
default 200,000), until it is evicted. Event times are ``--spacing-ms`` apart: the default 0.1 ms
puts 300,000 events in a window, so the capacity, not the window, bounds the store (with 1 ms the
window does, at ~30,000). The service also remembers up to ``remembered_ids`` (500,000) predicted
and resolved event ids, so memory may still grow after the pending store is full, until those
maps are full too; after that it must stay flat.

For each capacity given, prints RSS (MB) against events processed, the RSS at 25/50/75/100% of
the events processed, the growth from 50% (and 75%) to 100%, and the growth from the point where
every bounded store is full (``capacity`` + ``remembered_ids`` events when evicting) to the end;
writes everything to ``bench/results/model_memory.json``. A run stops at ``--time-limit``
seconds or when the service makes no progress for ``--stall-seconds``, and then says how far it
got.

Run: ``.venv/bin/streamml bench model-memory [--events 1000000] [--capacity 200000
--capacity 50000] [--spacing-ms 0.1] [--commit-interval 1] [--time-limit 900]``
(needs the local broker: ``.venv/bin/streamml kafka start``).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from services.cli.bench.scrape import load_average, scrape, total
from services.cli.bench.tools.child_process import exited, failure, service_pid
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

RESULTS = Path("bench/results/model_memory.json")
CHUNK = 5_000
MARKS = (0.25, 0.5, 0.75, 1.0)
REMEMBERED_IDS = 500_000
"""The service's default ``remembered_ids`` (``STREAMML_MODEL__REMEMBERED_IDS``)."""


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MB."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = float(rest.split()[0]) / 1024  # kB -> MB
    return values.get("VmRSS", float("nan")), values.get("VmHWM", float("nan"))


def run(kafka: KafkaSettings, events: int, capacity: int, args: argparse.Namespace,
        logs: Path) -> dict[str, Any]:
    """Publish ``events`` unlabelled vectors to a service with ``capacity``; sample memory."""
    prefix = new_prefix()
    ensure_topics(kafka, prefix)
    env = {"STREAMML_MODEL__PENDING_CAPACITY": str(capacity)}
    if args.kafka_extra is not None:
        env["STREAMML_KAFKA__EXTRA"] = args.kafka_extra
    if args.commit_interval is not None:
        env["STREAMML_MODEL__COMMIT_INTERVAL_SECONDS"] = str(args.commit_interval)
    if args.remembered_ids is not None:
        env["STREAMML_MODEL__REMEMBERED_IDS"] = str(args.remembered_ids)
    stream = VectorStream(prefix[2:-1], datetime.now(UTC) - timedelta(hours=2),
                          spacing_ms=args.spacing_ms, seed=21)
    producer = fast_producer(kafka)
    process = model_service(kafka, prefix, logs / f"memory-{capacity}.log", env).start()
    port = port_of(process)
    pid = service_pid(process)
    if pid is None:
        raise RuntimeError("the model service exited at start")
    rows: list[dict[str, float]] = []
    published = 0
    crashed: str | None = None
    stopped: str | None = None
    started = time.monotonic()
    progress_at, progress = started, -1.0

    def sample() -> dict[str, float]:
        samples = scrape(port)
        rss, peak = memory_mb(pid)
        row = {
            "t": round(time.monotonic() - started, 1),
            "published": float(published),
            "processed": total(samples, "streamml_model_predictions_total"),
            "rss_mb": round(rss, 1), "peak_rss_mb": round(peak, 1),
            "pending": total(samples, "streamml_model_pending_events"),
            "evicted": total(samples, "streamml_model_pending_evicted_total"),
            "timeouts_learned": labels_learned(samples, timed_out="true"),
            "checkpoint_bytes": total(samples, "streamml_model_checkpoint_bytes"),
            "checkpoints": float(health(port).get("checkpoints", 0)),
            "load1": round(os.getloadavg()[0], 2),
        }
        rows.append(row)
        return row

    try:
        next_sample = started
        while True:
            now = time.monotonic()
            if now >= next_sample:
                try:
                    row = sample()
                except OSError:
                    if exited(process):
                        crashed = failure(process)
                        break
                    raise
                next_sample = now + args.sample_seconds
                print(f"  {row['t']:7.1f}s processed {row['processed']:9.0f}  "
                      f"RSS {row['rss_mb']:7.1f} MB  pending {row['pending']:7.0f}  "
                      f"evicted {row['evicted']:8.0f}  checkpoint "
                      f"{row['checkpoint_bytes'] / 1e6:6.1f} MB  load {row['load1']}",
                      flush=True)
                if row["processed"] > progress:
                    progress_at, progress = now, row["processed"]
                if row["processed"] >= events:
                    break
                if now - progress_at >= args.stall_seconds:
                    stopped = f"no progress for {args.stall_seconds:.0f} s"
                    break
                if now - started >= args.time_limit:
                    stopped = f"time limit of {args.time_limit:.0f} s"
                    break
            processed = rows[-1]["processed"] if rows else 0.0
            if published < events and published - processed < args.ahead:
                for index in range(published, min(events, published + CHUNK)):
                    generated = stream.make(index)
                    produce(producer, f"{prefix}features", generated.key, generated.value)
                    producer.poll(0)
                published = min(events, published + CHUNK)
            else:
                producer.poll(0)
                time.sleep(min(0.2, max(0.0, next_sample - time.monotonic())))
        if crashed is None and stopped is None:
            time.sleep(max(2.0, (args.commit_interval or 1.0) * 1.5))  # let a checkpoint land
            sample()
    finally:
        process.stop(60)
        producer.flush(30)
    remembered = args.remembered_ids or REMEMBERED_IDS
    return summarise(events, capacity, remembered, env, rows, crashed, stopped)


def growth_between(first: dict[str, float], last: dict[str, float]) -> dict[str, float]:
    """RSS growth from row ``first`` to row ``last``."""
    mb = last["rss_mb"] - first["rss_mb"]
    return {"from_events": first["processed"], "to_events": last["processed"],
            "mb": round(mb, 1), "percent": round(100 * mb / first["rss_mb"], 1)}


def summarise(events: int, capacity: int, remembered: int, env: dict[str, str],
              rows: list[dict[str, float]], crashed: str | None,
              stopped: str | None) -> dict[str, Any]:
    """RSS at 25/50/75/100% of the events processed, growth 50 -> 100%, the rate, and RSS once
    every bounded store is full.

    The pending store is full after ``capacity`` events (or a window's worth, when timeouts come
    first); the map of predicted ids after ``remembered`` events; the map of resolved ids
    ``remembered`` events after the first eviction or timeout. From then on the service's state
    has a fixed size, so RSS must not trend upwards.
    """
    processed = rows[-1]["processed"] if rows else 0.0
    marks: dict[str, dict[str, float]] = {}
    for mark in MARKS:
        row = next((r for r in rows if r["processed"] >= mark * processed and r["processed"]),
                   None)
        if row is not None:
            marks[f"{mark:.0%}"] = row
    growth = growth_between(marks["50%"], marks["100%"]) if len(marks) == len(MARKS) else None
    late = growth_between(marks["75%"], marks["100%"]) if len(marks) == len(MARKS) else None
    resolving = next((r for r in rows if r["evicted"] + r["timeouts_learned"] > 0), None)
    full_at = None if resolving is None else (
        resolving["processed"] - resolving["evicted"] - resolving["timeouts_learned"] + remembered)
    steady = [r for r in rows if full_at is not None and r["processed"] >= max(full_at, 1)]
    once_full = None
    if len(steady) >= 2:
        once_full = {**growth_between(steady[0], steady[-1]),
                     "min_mb": min(r["rss_mb"] for r in steady),
                     "max_mb": max(r["rss_mb"] for r in steady)}
    started = next((r for r in rows if r["processed"] > 0), None)
    finished = next((r for r in rows if r["processed"] >= processed), None)
    rate = float("nan")
    if started is not None and finished is not None and finished["t"] > started["t"]:
        rate = (finished["processed"] - started["processed"]) / (finished["t"] - started["t"])
    return {
        "capacity": capacity, "service_env": env, "events": events, "processed": processed,
        "complete": processed >= events, "crashed": crashed, "stopped": stopped,
        "events_per_second": rate,
        "seconds": rows[-1]["t"] if rows else 0.0,
        "rss_at": marks, "rss_growth_50_to_100": growth, "rss_growth_75_to_100": late,
        "all_stores_full_at_events": full_at, "rss_once_all_stores_full": once_full,
        "max_rss_mb": max((r["rss_mb"] for r in rows), default=float("nan")),
        "peak_rss_mb": max((r["peak_rss_mb"] for r in rows), default=float("nan")),
        "max_pending": max((r["pending"] for r in rows), default=0.0),
        "evicted": rows[-1]["evicted"] if rows else 0.0,
        "timeouts_learned": rows[-1]["timeouts_learned"] if rows else 0.0,
        "max_checkpoint_bytes": max((r["checkpoint_bytes"] for r in rows), default=0.0),
        "checkpoints": rows[-1]["checkpoints"] if rows else 0.0,
        "load1_max": max((r["load1"] for r in rows), default=float("nan")),
        "samples": rows,
    }


def print_report(result: dict[str, Any], spacing_ms: float, table_rows: int) -> None:
    """Markdown tables of one run."""
    rows: list[dict[str, float]] = result["samples"]
    print(f"\n### pending capacity {result['capacity']:,} ({spacing_ms:g} ms between events, "
          f"env {result['service_env']})\n")
    if result["crashed"]:
        print(f"**The service died** after {result['processed']:,.0f} events: "
              f"{result['crashed']}\n")
    elif result["stopped"]:
        print(f"Stopped after {result['processed']:,.0f} of {result['events']:,} events "
              f"({result['stopped']}).\n")
    print("| t (s) | events processed | RSS (MB) | peak RSS (MB) | pending | evicted | "
          "checkpoint (MB) | checkpoints | load |")
    print("|---|---|---|---|---|---|---|---|---|")
    step = max(1, len(rows) // table_rows)
    for row in [*rows[::step], *([rows[-1]] if rows and (len(rows) - 1) % step else [])]:
        print(f"| {row['t']:.0f} | {row['processed']:,.0f} | {row['rss_mb']:.0f} | "
              f"{row['peak_rss_mb']:.0f} | {row['pending']:,.0f} | {row['evicted']:,.0f} | "
              f"{row['checkpoint_bytes'] / 1e6:.1f} | {row['checkpoints']:.0f} | {row['load1']} |")
    print("\n| share of the events processed | events | RSS (MB) |")
    print("|---|---|---|")
    for mark, row in result["rss_at"].items():
        print(f"| {mark} | {row['processed']:,.0f} | {row['rss_mb']:.0f} |")
    for name, key in (("50% -> 100%", "rss_growth_50_to_100"),
                      ("75% -> 100%", "rss_growth_75_to_100")):
        growth = result[key]
        if growth is not None:
            print(f"| growth {name} | | {growth['mb']:+.0f} MB ({growth['percent']:+.1f}%) |")
    full = result["rss_once_all_stores_full"]
    if full is not None:
        print(f"| once every bounded store is full ({full['from_events']:,.0f} -> "
              f"{full['to_events']:,.0f} events) | | {full['mb']:+.0f} MB "
              f"({full['percent']:+.1f}%); min {full['min_mb']:.0f}, max {full['max_mb']:.0f} |")
    elif result["all_stores_full_at_events"] is not None:
        print(f"| every bounded store full only after "
              f"{result['all_stores_full_at_events']:,.0f} events | | not reached |")
    print(f"\n{result['events_per_second']:.0f} events/s; largest checkpoint "
          f"{result['max_checkpoint_bytes'] / 1e6:.1f} MB; {result['checkpoints']:.0f} "
          f"checkpoints; peak RSS {result['peak_rss_mb']:.0f} MB; {result['evicted']:,.0f} "
          f"evicted; {result['timeouts_learned']:,.0f} windows closed (learned as negatives).")


def main(argv: Sequence[str] | None = None) -> int:
    """``streamml bench model-memory [options]``: parse ``argv``, run, return the exit code."""
    parser = argparse.ArgumentParser(prog="streamml bench model-memory",
                                     description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--capacity", type=int, action="append",
                        help="STREAMML_MODEL__PENDING_CAPACITY; repeat for several runs "
                        "(default: 200000, the service's default)")
    parser.add_argument("--spacing-ms", type=float, default=0.1,
                        help="event-time step between vectors")
    parser.add_argument("--ahead", type=int, default=50_000,
                        help="publish at most this many vectors beyond the service's predictions")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--time-limit", type=float, default=1800.0,
                        help="stop a run after this many seconds")
    parser.add_argument("--stall-seconds", type=float, default=300.0,
                        help="stop a run when the service makes no progress for this long")
    parser.add_argument("--commit-interval", type=float, default=None,
                        help="STREAMML_MODEL__COMMIT_INTERVAL_SECONDS (default: the service's)")
    parser.add_argument("--remembered-ids", type=int, default=None,
                        help="STREAMML_MODEL__REMEMBERED_IDS (default: the service's, 500000)")
    parser.add_argument("--kafka-extra", default=None, metavar="JSON",
                        help="extra librdkafka settings for the service, as JSON "
                        "(STREAMML_KAFKA__EXTRA)")
    parser.add_argument("--table-rows", type=int, default=25,
                        help="rows of the RSS table printed per run (all go to the JSON)")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap)
    logs = Path(tempfile.mkdtemp(prefix="bench-model-memory-"))
    results = []
    for capacity in args.capacity or [200_000]:
        print(f"pending capacity {capacity:,}: publishing {args.events:,} unlabelled vectors",
              flush=True)
        results.append(run(kafka, args.events, capacity, args, logs))
    figures = {
        "when": datetime.now(UTC).isoformat(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, python {sys.version.split()[0]}",
        "spec": "clicks", "spacing_ms": args.spacing_ms, "ahead": args.ahead,
        "load_average_at_end": load_average(), "runs": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    for result in results:
        print_report(result, args.spacing_ms, args.table_rows)
    print(f"\nsaved {args.output}; service logs in {logs}")
    return 0

