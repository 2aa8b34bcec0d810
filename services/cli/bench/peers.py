"""The pipeline's peers, measured in the same run on the same broker and stream.

Two peers drain the same preloaded input topic (:mod:`.peer_core` says what a message holds):
a plain confluent-kafka loop (:mod:`.peer_plain`, the project's environment) and a quixstreams
application, exactly-once (:mod:`.peer_quix`, the peers' own virtualenv, :mod:`.peer_venv`).
Each runs as a subprocess with the spec's champion and writes its predictions to a topic of its
own; the bench then reads every prediction back and computes, from the time each was produced,
the drain rate between 10% and 90% of the stream (:func:`~.stats.drain_rate`), and the
prequential accuracy against the labels it sent (:func:`~.stats.accuracy`). A peer that cannot
run (no virtualenv, a crash, a timeout) gets an ``error`` instead of figures; nothing raises.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.cimpl import NewTopic

import services
from schemas.spec import PipelineSpec
from schemas.topics import PIPELINE_PARTITIONS
from services.cli.bench.inprocess import Featurizer
from services.cli.bench.peer_core import Label, PeerConfig, Recipe, input_bytes
from services.cli.bench.peer_venv import PeerVenv
from services.cli.bench.scrape import load_average
from services.cli.bench.stats import accuracy, drain_rate
from services.cli.bench.wire import fast_producer, produce
from services.cli.bench.workload import Workload, event_bytes, schedule
from services.common.kafka import make_admin
from services.common.settings import KafkaSettings
from services.model.learner import Learner

PEERS = ("confluent-kafka", "quixstreams")
"""The peers, in the order they run and are reported."""
Output = tuple[float, Any]
"""When a prediction was produced (wall-clock seconds), and the prediction."""
Decoder = Callable[[bytes], tuple[str, float, Any] | None]
"""An output message's value to (event id, produced at, prediction), or None to skip it."""


@dataclass(frozen=True)
class PeerStream:
    """The peers' input: per event its id, partition key, feature dict and label."""

    events: list[tuple[str, bytes, dict[str, float], Label]]

    @property
    def labels(self) -> dict[str, Label]:
        return {identifier: y for identifier, _, _, y in self.events}


def peer_stream(spec: PipelineSpec, workload: Workload, events: int, run: str) -> PeerStream:
    """The first ``events`` rows as the features service would see them, keyed by the spec's
    first entity key; labels normalised as the model learns them."""
    featurizer = Featurizer(spec)
    learner = Learner(spec.models, spec.label)
    primary = spec.entity_keys[0]
    start = datetime.now(UTC)
    found = []
    for index, row in zip(range(events), workload.rows(), strict=False):
        identifier = f"p{run}.{index}"
        when = schedule(start, 1000.0, index)
        x = featurizer.features(event_bytes(identifier, when, row), when)
        found.append((identifier, row.entity[primary].encode(), x,
                      learner.normalise_label(row.label)))
    return PeerStream(found)


def champion_recipe(spec: PipelineSpec) -> Recipe:
    """The spec's champion as data for the peers (see :func:`~.peer_core.build_champion`)."""
    champion = spec.models.champion
    module, attribute = champion.locate()
    return Recipe(module, attribute, dict(champion.params), champion.scale)


def create_topics(kafka: KafkaSettings, names: Iterable[tuple[str, int]]) -> None:
    """Create each (name, partitions) topic; fails when one exists."""
    admin = make_admin(kafka)
    futures = admin.create_topics([NewTopic(name, partitions, 1) for name, partitions in names],
                                  request_timeout=30)
    for future in futures.values():
        future.result()


def load_input(kafka: KafkaSettings, topic: str, stream: PeerStream) -> None:
    """Every event of ``stream`` on ``topic``, acknowledged by the broker."""
    producer = fast_producer(kafka, linger_ms=20)
    for identifier, key, x, y in stream.events:
        produce(producer, topic, key, input_bytes(identifier, x, y))
        producer.poll(0)
    if producer.flush(120):
        raise RuntimeError(f"the broker did not acknowledge the input of {topic}")


def read_outputs(client_config: dict[str, str], topic: str, expected: int, timeout: float,
                 decode: Decoder) -> dict[str, Output]:
    """Every output on ``topic`` (all partitions, from the beginning, read_committed) until
    ``expected`` distinct event ids were read or ``timeout`` seconds passed: id -> (produced
    at, prediction); the first output of an id wins."""
    consumer = Consumer({**client_config, "group.id": f"bench-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    found: dict[str, Output] = {}
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        deadline = time.monotonic() + timeout
        while len(found) < expected and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                if message.error() is not None:
                    continue
                decoded = decode(message.value() or b"{}")
                if decoded is not None and decoded[0] not in found:
                    found[decoded[0]] = (decoded[1], decoded[2])
    finally:
        consumer.close()
    return found


def decode_peer_output(value: bytes) -> tuple[str, float, Any] | None:
    """A peer's output message (:func:`~.peer_core.output_bytes`)."""
    document = orjson.loads(value)
    if not isinstance(document, dict) or "event_id" not in document:
        return None
    return str(document["event_id"]), float(document["at"]), document.get("prediction")


def figures(outputs: dict[str, Output], labels: Mapping[str, Any]) -> dict[str, Any]:
    """Drain rate, accuracy and counts of one drained stream's outputs."""
    times = [at for at, _ in outputs.values()]
    return {
        "events": len(labels), "outputs": len(outputs),
        "missing": len(set(labels) - set(outputs)),
        "events_per_second": drain_rate(times),
        "seconds_first_to_last": (max(times) - min(times)) if times else None,
        "accuracy": accuracy({key: value for key, (_, value) in outputs.items()}, labels),
    }


def run_peer(command: list[str], env: dict[str, str], timeout: float, log: Path,
             ) -> dict[str, Any]:
    """Run one peer; its JSON report (last line of stdout), or ``{"error": ...}``."""
    try:
        with log.open("w") as err:
            done = subprocess.run(command, stdout=subprocess.PIPE, stderr=err, env=env,  # noqa: S603
                                  timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {timeout:.0f} s (see {log})"}
    except OSError as error:
        return {"error": f"could not start: {error}"}
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"exited with {done.returncode} (see {log})"}
    try:
        report: dict[str, Any] = orjson.loads(lines[-1])
    except orjson.JSONDecodeError:
        return {"error": f"printed no report (see {log})"}
    return report


def _pythonpath() -> str:
    """The repository (so ``services.cli.bench.peer_*`` import) and the working directory (a
    spec's own estimator factory), ahead of any ``PYTHONPATH`` already set."""
    root = str(Path(next(iter(services.__path__))).resolve().parent)
    rest = os.environ.get("PYTHONPATH")
    return os.pathsep.join([root, os.getcwd(), *([rest] if rest else [])])


def measure_peers(kafka: KafkaSettings, spec: PipelineSpec, workload: Workload, events: int,
                  river_delay: int, venv: Callable[[], PeerVenv], logs: Path, run: str,
                  keep_topics: bool = False, say: Callable[[str], None] = print,
                  ) -> dict[str, dict[str, Any]]:
    """Load ``events`` events once, let each peer drain them; figures (or an error) per peer.
    ``venv`` makes (or finds) the quixstreams virtualenv when its turn comes."""
    from services.cli.bench.stack_run import delete_topics

    prefix = f"bench{run}p-"
    source = f"{prefix}input"
    stream = peer_stream(spec, workload, events, run)
    create_topics(kafka, [(source, PIPELINE_PARTITIONS),
                          *((f"{prefix}{peer}-out", 1) for peer in PEERS)])
    load_input(kafka, source, stream)
    logs.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    timeout = 120.0 + events / 200
    try:
        for peer in PEERS:
            if peer == "confluent-kafka":
                python, module = sys.executable, "services.cli.bench.peer_plain"
            else:
                made = venv()
                if made.python is None:
                    results[peer] = {"error": made.error or "no virtualenv"}
                    continue
                python, module = str(made.python), "services.cli.bench.peer_quix"
            say(f"peer {peer}: draining {events:,} events ...")
            output = f"{prefix}{peer}-out"
            config = PeerConfig(kafka.client_config(), source, output,
                                f"{prefix}{peer}-{uuid.uuid4().hex[:6]}", events, river_delay,
                                champion_recipe(spec), timeout)
            env = {**os.environ, "PYTHONPATH": _pythonpath()}
            load_before = load_average()
            report = run_peer([python, "-m", module, config.dumps()], env, timeout + 60,
                              logs / f"peer-{peer}.log")
            load_after = load_average()
            outputs = read_outputs(kafka.client_config(), output, events, 60.0,
                                   decode_peer_output)
            results[peer] = {**figures(outputs, stream.labels), "report": report,
                             "load_before": load_before, "load_after": load_after}
            if "error" in report:
                results[peer]["error"] = report["error"]
    finally:
        if not keep_topics:
            delete_topics(kafka, prefix)
    return results
