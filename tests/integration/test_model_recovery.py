"""Exactly-once learning on the real broker: SIGKILL the model service during an Elec2 replay,
restart it, and it ends with the same model as an uninterrupted run, with no outcome duplicated
or missing.

Both runs replay the first rows of Elec2 with a label delay of 48 events, then publish a held-out
slice of later rows without labels; the champion's predictions on that slice are compared
exactly, as are the predictions recorded in every outcome.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.codec import decode
from schemas.predictions import Outcome, Prediction
from schemas.spec import load_spec
from services.cli.process import ServiceProcess
from services.common.kafka import ensure_topics
from services.common.settings import KafkaSettings, Settings
from services.producer.client import EventClient
from services.producer.replay import RowConverter, read_rows
from tests.integration.conftest import REPO, read_topic, topic_size

pytestmark = pytest.mark.integration

ELEC2 = REPO / "data" / "elec2.csv"
TRAIN = 6000
HELD_OUT = 300


@dataclass(frozen=True)
class RunResult:
    held_out: dict[str, tuple[object, float | None]]
    outcomes: dict[str, tuple[object, float | None]]
    outcome_messages: int
    restores: list[str]
    """The model service's log lines on restoring a checkpoint."""


def run(kafka: KafkaSettings, logs: Path, kill_model: bool) -> RunResult:
    """The killed run restores from a full checkpoint and the deltas after it (its deltas may
    add up to far more than the full one); the uninterrupted one checkpoints by default."""
    prefix = f"mr{uuid.uuid4().hex[:8]}-"
    ensure_topics(kafka, prefix)
    env = {"STREAMML_TOPIC_PREFIX": prefix, "STREAMML_KAFKA__BOOTSTRAP_SERVERS":
           kafka.bootstrap_servers, "STREAMML_SPEC": "elec2",
           # No learning by wall-clock time: a pause of the features stream must not reorder.
           "STREAMML_MODEL__LABEL_HOLD_SECONDS": "600",
           **({"STREAMML_MODEL__CHECKPOINT_DELTA_BUDGET": "1000"} if kill_model else {})}
    features = ServiceProcess("services.features", env, logs / f"{prefix}features.log").start()
    model = ServiceProcess("services.model", env, logs / f"{prefix}model.log").start()
    try:
        replay = subprocess.run(
            [sys.executable, "-m", "services.cli", "replay", str(ELEC2), "--spec", "elec2",
             "--label-delay", "48", "--limit", str(TRAIN), "--quiet"],
            env={**model.env, "STREAMML_METRICS_PORT": "0"}, capture_output=True, text=True,
            timeout=300, check=False,
        )
        assert replay.returncode == 0, replay.stdout + replay.stderr
        # Later events: their features release the last labels, in time order, before them.
        held_out = publish_held_out(kafka, prefix)
        outcomes_topic = f"{prefix}outcomes"
        if kill_model:
            read_topic(kafka, outcomes_topic, lambda got: len(got) >= TRAIN // 3, timeout=120)
            model.kill()
            model.start()
        outcome_list = [decode(Outcome, m.value()) for m in read_topic(
            kafka, outcomes_topic, lambda got: len(got) >= TRAIN, timeout=180)]
        predictions = read_topic(
            kafka, f"{prefix}predictions", lambda got: len(got) >= TRAIN + HELD_OUT, timeout=120)
    finally:
        model.stop()
        features.stop()
    by_id = {p.event_id: (p.prediction, p.score)
             for p in (decode(Prediction, m.value()) for m in predictions)}
    return RunResult(
        held_out={event_id: by_id[event_id] for event_id in held_out if event_id in by_id},
        outcomes={o.event_id: (o.prediction, o.score) for o in outcome_list},
        outcome_messages=topic_size(kafka, outcomes_topic),
        restores=[line for line in (logs / f"{prefix}model.log").read_text().splitlines()
                  if "restored checkpoint" in line],
    )


def publish_held_out(kafka: KafkaSettings, prefix: str) -> list[str]:
    spec = load_spec("elec2")
    converter = RowConverter(spec, str(ELEC2))
    client = EventClient.connect(Settings(kafka=kafka, topic_prefix=prefix), spec.entity_keys[0])
    ids = []
    for row in read_rows(ELEC2):
        if row.number <= TRAIN:
            continue
        if row.number > TRAIN + HELD_OUT:
            break
        event, _ = converter.convert(row, datetime.now(UTC))
        client.publish_event(event)
        ids.append(event.event_id)
    client.flush()
    return ids


def test_a_sigkilled_model_restores_and_ends_with_the_same_model(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    uninterrupted = run(kafka, tmp_path, kill_model=False)
    recovered = run(kafka, tmp_path, kill_model=True)

    for result in (uninterrupted, recovered):
        assert len(result.outcomes) == TRAIN, "an outcome is missing"
        assert result.outcome_messages == TRAIN, "an outcome was published twice"
        assert len(result.held_out) == HELD_OUT
    same_outcomes = sum(recovered.outcomes[k] == v for k, v in uninterrupted.outcomes.items())
    same_held_out = sum(recovered.held_out[k] == v for k, v in uninterrupted.held_out.items())
    print(f"outcomes identical: {same_outcomes}/{TRAIN}; "
          f"held-out predictions identical: {same_held_out}/{HELD_OUT}; {recovered.restores}")
    assert uninterrupted.restores == []
    [restore] = recovered.restores
    assert re.search(r"\+ [1-9]\d* deltas", restore), "the restore should replay deltas"
    assert recovered.outcomes == uninterrupted.outcomes
    assert recovered.held_out == uninterrupted.held_out
