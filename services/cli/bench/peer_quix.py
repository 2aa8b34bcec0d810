"""Peer: a quixstreams application doing the peers' predict-learn step, exactly-once.

Run by the bench with the python of the peers' own virtualenv (:mod:`.peer_venv`: quixstreams
pins a confluent-kafka other than the project's), the repository on ``PYTHONPATH``:
``python -m services.cli.bench.peer_quix CONFIG_JSON`` (a :class:`~.peer_core.PeerConfig`).
A ``StreamingDataFrame`` over the input topic (JSON) applies
:class:`~.peer_core.PredictLearn` to each message and sends the prediction to the output topic
(JSON), with ``processing_guarantee="exactly-once"``; ``Application.run(count=events)`` stops
after that many outputs (or after ``timeout`` seconds without a message) and commits. Prints one
JSON line (:func:`~.peer_core.report`) on stdout.

Only the standard library, orjson, River and quixstreams are imported: not the project's
packages beyond :mod:`.peer_core`.
"""

from __future__ import annotations

import sys
import time
from importlib.metadata import version
from typing import Any

from services.cli.bench.peer_core import (
    PeerConfig,
    PredictLearn,
    build_champion,
    output_document,
    report,
)


def run(config: PeerConfig) -> str:
    """Process ``config.events`` events; the JSON report."""
    from quixstreams import Application  # type: ignore[import-not-found,unused-ignore]
    from quixstreams.kafka.configuration import (  # type: ignore[import-not-found,unused-ignore]
        ConnectionConfig,
    )

    loop = PredictLearn(build_champion(config.champion), config.river_delay)
    app = Application(
        broker_address=ConnectionConfig.from_librdkafka_dict(
            {key: value for key, value in config.client.items() if key != "client.id"}),
        consumer_group=config.group, auto_offset_reset="earliest",
        processing_guarantee="exactly-once", auto_create_topics=False,
        use_changelog_topics=False, loglevel="WARNING",
    )
    source = app.topic(config.input_topic, value_deserializer="json")
    sink = app.topic(config.output_topic, value_serializer="json")
    first_at: list[float] = []
    processed = [0]

    def step(document: dict[str, Any]) -> dict[str, Any]:
        if not first_at:
            first_at.append(time.monotonic())
        processed[0] += 1
        prediction = loop.step(document["x"], document["y"])
        return output_document(document["event_id"], prediction)

    frame = app.dataframe(source).apply(step)
    frame.to_topic(sink)
    app.run(count=config.events, timeout=min(config.timeout, 60.0), collect=False)
    seconds = time.monotonic() - first_at[0] if first_at else 0.0
    return report("quixstreams", processed[0], seconds, {"quixstreams": version("quixstreams"),
                            "confluent-kafka": version("confluent-kafka"),
                            "river": version("river")},
                  processing_guarantee="exactly-once")


def main(argv: list[str] | None = None) -> int:
    """Entry point: the config as the only argument; the report on stdout."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m services.cli.bench.peer_quix CONFIG_JSON", file=sys.stderr)
        return 2
    print(run(PeerConfig.parse(args[0])), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
