"""Peer: a plain confluent-kafka predict-learn loop, the least a Kafka consumer in Python costs.

``python -m services.cli.bench.peer_plain CONFIG_JSON`` (a :class:`~.peer_core.PeerConfig`):
``consume(500)``, decode each message (orjson), predict then learn
(:class:`~.peer_core.PredictLearn`), produce the prediction (idempotent producer, ``acks=all``,
``linger.ms=5``), until ``events`` predictions were produced or ``timeout`` passed; then flush
and print one JSON line (:func:`~.peer_core.report`) on stdout. Offsets are auto-committed:
at-least-once, no transactions. Runs in the project's own environment.
"""

from __future__ import annotations

import sys
import time
from importlib.metadata import version

import orjson
from confluent_kafka import Consumer, Producer

from services.cli.bench.peer_core import (
    PeerConfig,
    PredictLearn,
    build_champion,
    output_bytes,
    report,
)

BATCH = 500
"""Messages asked for per ``consume`` call."""


def run(config: PeerConfig) -> str:
    """Process ``config.events`` events; the JSON report."""
    loop = PredictLearn(build_champion(config.champion), config.river_delay)
    consumer = Consumer({**config.client, "group.id": config.group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": True})
    producer = Producer({**config.client, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5, "queue.buffering.max.messages": 1_000_000})
    consumer.subscribe([config.input_topic])
    processed = 0
    first_at: float | None = None
    deadline = time.monotonic() + config.timeout
    try:
        while processed < config.events and time.monotonic() < deadline:
            for message in consumer.consume(BATCH, 0.5):
                if message.error() is not None:
                    continue
                if first_at is None:
                    first_at = time.monotonic()
                document = orjson.loads(message.value() or b"{}")
                prediction = loop.step(document["x"], document["y"])
                _produce(producer, config.output_topic, message.key(),
                         output_bytes(document["event_id"], prediction))
                processed += 1
            producer.poll(0)
        unsent = producer.flush(60)
    finally:
        consumer.close()
    seconds = time.monotonic() - first_at if first_at is not None else 0.0
    return report("confluent-kafka loop", processed, seconds,
                  {"confluent-kafka": version("confluent-kafka"), "river": version("river")},
                  unsent=unsent)


def _produce(producer: Producer, topic: str, key: bytes | None, value: bytes) -> None:
    while True:
        try:
            producer.produce(topic, value=value, key=key)
            return
        except BufferError:
            producer.poll(0.05)


def main(argv: list[str] | None = None) -> int:
    """Entry point: the config as the only argument; the report on stdout."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m services.cli.bench.peer_plain CONFIG_JSON", file=sys.stderr)
        return 2
    print(run(PeerConfig.parse(args[0])), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
