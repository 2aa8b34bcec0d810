"""The scaled layout under failure: one learner and predictor replicas on a 6-partition
``features`` topic, clicks at 400 events/s. One replica is SIGKILLed mid-stream (and not
restarted: its partitions go to the others), one is added mid-stream, and the learner is
SIGKILLed (the supervisor restarts it). Counted from the topics: every event has exactly one
prediction, every label is learned exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.codec import decode
from schemas.predictions import Outcome, Prediction
from services.cli import stack
from services.cli.demo import scrape
from services.common.settings import KafkaSettings, TopicSettings
from tests.chaos.stack import RunningStack, consumers_running, ids_in
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

EVENTS = 12_000
RATE = 400
PORT_OFFSET = 1700
PREDICTOR_PORT = 9110 + PORT_OFFSET
MODELS = 2
"""The clicks spec's champion and challenger: one outcome each per event."""


@pytest.fixture
def learner(kafka: KafkaSettings, tmp_path: Path) -> Iterator[RunningStack]:
    """features, the model service as learner, drift and metrics-sink under a supervisor."""
    with consumers_running(
        kafka, tmp_path / "home", "clicks", port_offset=PORT_OFFSET, tag="s",
        settings={"STREAMML_MODEL__LAYOUT": "learner", "STREAMML_MODEL__LABEL_HOLD_SECONDS": "5",
                  "STREAMML_TOPICS__PARTITIONS": "6"},
        topics=TopicSettings(partitions=6),
    ) as running:
        yield running


class Replicas:
    """Predictor replicas run by the test itself (not supervised: a killed one stays dead)."""

    def __init__(self, running: RunningStack, logs: Path) -> None:
        self._running, self._logs = running, logs
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, replica: int) -> None:
        env = {**os.environ, **self._running.env, "STREAMML_PREDICTOR__REPLICA": str(replica),
               "STREAMML_METRICS_PORT": str(PREDICTOR_PORT + replica)}
        log = (self._logs / f"predictor-{replica}.log").open("wb")
        self.processes[replica] = subprocess.Popen(
            [sys.executable, "-m", "services.predictor"], env=env, stdout=log,
            stderr=subprocess.STDOUT)
        wait_for(lambda: self.predicted(replica) is not None, timeout=60,
                 what=f"predictor {replica} to serve")

    def predicted(self, replica: int) -> float | None:
        """Predictions replica ``replica`` has made (None while it is not up)."""
        try:
            metrics = scrape(PREDICTOR_PORT + replica)
        except OSError:
            return None
        return sum(value for name, value in metrics.items()
                   if name.startswith("streamml_predictor_predictions_total"))

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            process.wait(timeout=30)


def served_by(replicas: Replicas, which: tuple[int, ...]) -> float:
    """Predictions made so far by the replicas ``which``."""
    return sum(replicas.predicted(replica) or 0 for replica in which)


def outcome_of(raw: bytes | None) -> str:
    outcome = decode(Outcome, raw)
    return f"{outcome.event_id}/{outcome.model}"


def produce(running: RunningStack) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.producer"],
        env={**os.environ, **running.env, "STREAMML_METRICS_PORT": "0",
             "STREAMML_PRODUCER__RATE": str(RATE), "STREAMML_PRODUCER__MAX_EVENTS": str(EVENTS)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def kill_learner(running: RunningStack) -> None:
    pid = int(stack.status(running.home)["services"]["model"]["pid"])
    os.kill(pid, signal.SIGKILL)

    def restarted() -> bool:
        service = stack.status(running.home)["services"]["model"]
        return int(service["pid"]) != pid and bool(service["healthy"])

    wait_for(restarted, timeout=90, what="the learner to be restarted and healthy")


@pytest.mark.timeout(600)
def test_replicas_killed_and_added_and_a_killed_learner_lose_and_double_nothing(
    learner: RunningStack, kafka: KafkaSettings, tmp_path: Path
) -> None:
    replicas = Replicas(learner, tmp_path)
    try:
        for replica in range(3):
            replicas.start(replica)
        publisher = produce(learner)
        wait_for(lambda: (replicas.predicted(1) or 0) >= 500, timeout=60,
                 what="replica 1 to serve 500 predictions")
        served_before_kill = replicas.predicted(1)
        replicas.processes[1].kill()
        survivors = served_by(replicas, (0, 2))
        wait_for(lambda: served_by(replicas, (0, 2)) >= survivors + 1_000, timeout=60,
                 what="replicas 0 and 2 to serve 1,000 more after the kill")
        replicas.start(3)
        wait_for(lambda: (replicas.predicted(3) or 0) >= 100, timeout=60,
                 what="the added replica to serve 100 predictions")
        kill_learner(learner)
        output, _ = publisher.communicate(timeout=240)
        assert publisher.returncode == 0, output
        prefix = learner.prefix
        predictions, prediction_records = ids_in(
            kafka, f"{prefix}predictions", lambda raw: decode(Prediction, raw).event_id, EVENTS)
        outcomes, outcome_records = ids_in(
            kafka, f"{prefix}outcomes", outcome_of, EVENTS * MODELS, timeout=240)
        added = replicas.predicted(3)
        crashed = [replica for replica, process in replicas.processes.items()
                   if replica != 1 and process.poll() is not None]
    finally:
        replicas.stop_all()
    print(f"\nevents {EVENTS}: predictions {prediction_records} ({len(predictions)} distinct), "
          f"outcomes {outcome_records} ({len(outcomes)} distinct event/model); replica 1 served "
          f"{served_before_kill} before its kill, replica 3 {added} after it was added")
    assert served_before_kill and added, "the killed and the added replica both served"
    assert not crashed, f"replicas {crashed} stopped (their logs: {tmp_path})"
    assert len(predictions) == EVENTS, "an event got no prediction"
    assert prediction_records == EVENTS, "an event was predicted twice"
    assert len(outcomes) == EVENTS * MODELS, "a label was lost"
    assert outcome_records == EVENTS * MODELS, "a label was learned twice"
