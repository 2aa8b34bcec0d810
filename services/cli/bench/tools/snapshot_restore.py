"""How much a model restore reads after an hour of checkpoints, with and without the compaction
configs of ``model-snapshots`` (``schemas.topics.SNAPSHOT_CONFIG``).

Writes ``--commits`` checkpoints (3,600: an hour at one a second) through the model service's own
:class:`~services.model.checkpoint.TransactionalCheckpointer`, full and delta as it decides,
of the stores ``streamml bench checkpoint`` builds for ``--rate`` events/s (``--rate`` events
of traffic between two commits). Each checkpoint goes, in the same transaction, to two fresh
topics on the broker:

- ``new``: created by the project (``model-snapshots`` as the catalogue has it now);
- ``old``: the catalogue's configs before (compacted, 64 MiB messages, no segment or cleaner
  settings) on a broker with Kafka's default settings: ``segment.bytes`` 1 GiB and ``segment.ms``
  7 days are set on the topic, since the local broker rolls at 64 MiB (``log.segment.bytes``).

Records carry the time they would have had at one commit per ``--interval`` seconds, ending now,
so time-based rolling (``segment.ms``) happens as in a real hour; the broker's log cleaner runs
as configured (the local broker keeps Kafka's cleaner defaults: one thread, 15 s back-off), and
nothing broker-wide is changed. Then, right away and again after ``--settle`` seconds, it times
a restore of each topic by the service's own read path (:func:`read_checkpoint_chain`, then
:func:`load_state`) and counts the records and bytes that path reads. The topics are deleted at
the end unless ``--keep``.

    .venv/bin/streamml bench snapshot-restore [--commits 3600] [--rate 1000]
        [--settle 180] [--bootstrap 127.0.0.1:9092]

Prints a table and writes it as JSON to ``bench/results/snapshot-restore-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from confluent_kafka import Producer
from confluent_kafka.cimpl import NewTopic

from schemas.topics import topic_spec
from services.cli.bench.tools.checkpoint import Stores
from services.common.compacted import committed_records
from services.common.kafka import (
    create_missing_topics,
    make_admin,
    make_consumer,
    make_producer,
    provision_topics,
)
from services.common.settings import KafkaSettings
from services.model.checkpoint import TransactionalCheckpointer, load_state, read_checkpoint_chain
from services.model.service import SNAPSHOT_MAX_BYTES
from services.model.settings import ModelOptions

OLD_CONFIG = {
    "cleanup.policy": "compact", "max.message.bytes": str(64 * 1024 * 1024),
    "min.compaction.lag.ms": "0",
    # Kafka's defaults (log.segment.bytes, log.roll.hours), which the local broker does not keep.
    "segment.bytes": str(1024 ** 3), "segment.ms": str(7 * 24 * 3600 * 1000),
}
KEY = "bench-learner"


class Source:
    """The checkpointed state: the handler's stores at ``rate`` events/s (a Checkpointable)."""

    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self.labels_learned = 0
        self.revision = 0

    def traffic(self, events: int) -> None:
        for _ in range(events):
            self.stores.event()
        self.labels_learned += events
        self.revision += 1

    def state(self) -> dict[str, Any]:
        return self.stores.state()

    def champion(self) -> tuple[str, int]:
        return "logreg", 1


class TeeProducer:
    """The transactional producer, each checkpoint record sent to every topic of ``topics`` with
    the time of the simulated commit."""

    def __init__(self, producer: Producer, topics: list[str]) -> None:
        self._producer = producer
        self._topics = topics
        self.timestamp_ms = 0
        self.bytes = 0

    def produce(self, topic: str, key: bytes | None = None, value: bytes | None = None) -> None:
        for target in self._topics:
            self._producer.produce(target, key=key, value=value, timestamp=self.timestamp_ms)
        self.bytes += len(key or b"") + len(value or b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)


def write_hour(kafka: KafkaSettings, topics: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Checkpoint ``args.commits`` times into ``topics``; what was written."""
    options = ModelOptions()
    stores = Stores(options, min(options.pending_capacity, int(args.rate * args.window)))
    source = Source(stores)
    producer = make_producer(kafka, **{"transactional.id": f"bench-{uuid.uuid4().hex[:8]}",
                                       "message.max.bytes": SNAPSHOT_MAX_BYTES,
                                       "transaction.timeout.ms": 300_000})
    producer.init_transactions(60)
    tee = TeeProducer(producer, topics)
    consumer = make_consumer(kafka, f"bench-{uuid.uuid4().hex[:8]}")  # assigned nothing
    checkpointer = TransactionalCheckpointer(cast(Producer, tee), consumer, topics[0], KEY,
                                             source, interval=args.interval)
    checkpointer.begin()
    start_ms = int(time.time() * 1000 - args.commits * args.interval * 1000)
    fulls = 0
    started = time.monotonic()
    for n in range(args.commits):
        source.traffic(int(args.rate * args.interval))
        tee.timestamp_ms = start_ms + int(n * args.interval * 1000)
        checkpointer.commit()
        fulls += checkpointer.last_size == checkpointer.last_full_size
        if n % 300 == 299:
            print(f"  {n + 1} checkpoints, {tee.bytes / 1e6:,.0f} MB per topic, "
                  f"{time.monotonic() - started:.0f}s")
    producer.abort_transaction(60)  # the one the last commit opened, empty
    consumer.close()
    return {"checkpoints": args.commits, "full": fulls, "delta": args.commits - fulls,
            "last_sequence": args.commits, "bytes_per_topic": tee.bytes,
            "last_full_bytes": checkpointer.last_full_size,
            "write_seconds": round(time.monotonic() - started, 1)}


def restore(kafka: KafkaSettings, topic: str) -> dict[str, Any]:
    """Time a restore of ``topic`` by the service's read path; count what that path reads."""
    started = time.monotonic()
    chain = read_checkpoint_chain(kafka, topic, KEY)
    read_seconds = time.monotonic() - started
    load_state(chain)
    total_seconds = time.monotonic() - started
    records = tombstones = size = 0
    for message in committed_records(kafka, topic):
        records += 1
        tombstones += message.value() is None
        size += len(message.key() or b"") + len(message.value() or b"")
    return {"seconds": round(total_seconds, 2), "read_seconds": round(read_seconds, 2),
            "records": records, "tombstones": tombstones, "bytes": size,
            "restored_sequence": chain[-1].sequence if chain else None,
            "chain": len(chain)}


def main(argv: Sequence[str] | None = None) -> int:
    """``streamml bench snapshot-restore [options]``: parse ``argv``, run, return the exit code."""
    parser = argparse.ArgumentParser(prog="streamml bench snapshot-restore",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--commits", type=int, default=3600)
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second")
    parser.add_argument("--window", type=float, default=30.0, help="feedback window, seconds")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between commits")
    parser.add_argument("--settle", type=float, default=180.0,
                        help="seconds the log cleaner gets before the second restore")
    parser.add_argument("--keep", action="store_true", help="keep the topics")
    args = parser.parse_args(argv)
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap)
    prefix = f"bench-restore-{uuid.uuid4().hex[:8]}-"
    topics = {"new": f"{prefix}model-snapshots", "old": f"{prefix}old-model-snapshots"}
    provision_topics(kafka, prefix, specs=[topic_spec("model-snapshots")])
    create_missing_topics(kafka, [NewTopic(topics["old"], num_partitions=1,
                                           replication_factor=1, config=OLD_CONFIG)])
    print(f"writing {args.commits:,} checkpoints of {args.rate:,.0f} events/s stores to "
          f"{topics['new']} and {topics['old']}")
    try:
        written = write_hour(kafka, [topics["new"], topics["old"]], args)
        results: dict[str, Any] = {"written": written, "restores": []}
        for when, wait in (("right after", 0.0), (f"{args.settle:.0f} s later", args.settle)):
            time.sleep(wait)  # the broker's log cleaner works meanwhile
            for kind, topic in topics.items():
                figures = {"when": when, "configs": kind, **restore(kafka, topic)}
                results["restores"].append(figures)
                print(f"  restore {kind} {when}: {figures['seconds']} s, "
                      f"{figures['bytes'] / 1e6:,.0f} MB")
    finally:
        if not args.keep:
            make_admin(kafka).delete_topics(list(topics.values()))
    report(results, args)
    return 0


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    written = results["written"]
    print(f"\n{written['checkpoints']:,} checkpoints ({written['full']} full, "
          f"{written['delta']:,} delta; last full {written['last_full_bytes'] / 1e6:.1f} MB) "
          f"= {written['bytes_per_topic'] / 1e6:,.0f} MB per topic, written in "
          f"{written['write_seconds']:.0f} s")
    print("| configs | when | restore s | of it reading s | records read | tombstones | "
          "MB read | restored checkpoint |\n|---|---|---|---|---|---|---|---|")
    for row in results["restores"]:
        print(f"| {row['configs']} | {row['when']} | {row['seconds']:.2f} | "
              f"{row['read_seconds']:.2f} | {row['records']:,} | {row['tombstones']:,} | "
              f"{row['bytes'] / 1e6:,.1f} | {row['restored_sequence']} of "
              f"{written['last_sequence']} ({row['chain']} in chain) |")
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"snapshot-restore-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps({"args": vars(args), **results}, indent=2) + "\n")
    print(f"wrote {path}")

