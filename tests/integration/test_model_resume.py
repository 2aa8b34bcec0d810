"""The model service never resumes silently from older state, on the real broker.

A checkpoint chain with a delta missing restores older state than the offsets the group
committed: the service rewinds the group to the restored checkpoint's offsets and learns every
label exactly once. A checkpoint ahead of the group's offsets stops the service with one line.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer, TopicPartition

from schemas.codec import decode
from schemas.predictions import Outcome
from services.cli.process import ServiceProcess
from services.common.kafka import ensure_topics, make_consumer
from services.common.settings import KafkaSettings
from services.model.checkpoint import delta_key, read_checkpoint_chain
from tests.integration.conftest import read_topic, topic_size, wait_for
from tests.integration.test_model_recovery import ELEC2, TRAIN, publish_held_out

pytestmark = pytest.mark.integration


def environment(kafka: KafkaSettings, prefix: str) -> dict[str, str]:
    return {"STREAMML_TOPIC_PREFIX": prefix, "STREAMML_SPEC": "elec2",
            "STREAMML_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            # Labels read again after the features that pass their time (a backlog is not read
            # in time order) are learned on the next vector, or after this pause.
            "STREAMML_MODEL__LABEL_HOLD_SECONDS": "1",
            # Many small deltas: one of them goes missing.
            "STREAMML_MODEL__COMMIT_INTERVAL_SECONDS": "0.2",
            "STREAMML_MODEL__CHECKPOINT_DELTA_BUDGET": "1000"}


def replay(env: dict[str, str], rows: int) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "replay", str(ELEC2), "--spec", "elec2",
         "--label-delay", "48", "--limit", str(rows), "--quiet"],
        env={**env, "STREAMML_METRICS_PORT": "0"}, capture_output=True, text=True, timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_restore_with_a_missing_delta_reads_the_inputs_again_and_skips_no_label(
    kafka: KafkaSettings, tmp_path: Path,
) -> None:
    prefix = f"rs{uuid.uuid4().hex[:8]}-"
    ensure_topics(kafka, prefix)
    learner, snapshots, outcomes = (f"{prefix}streamml-model", f"{prefix}model-snapshots",
                                    f"{prefix}outcomes")
    env = environment(kafka, prefix)
    log = tmp_path / "model.log"
    features = ServiceProcess("services.features", env, tmp_path / "features.log").start()
    model = ServiceProcess("services.model", env, log).start()
    try:
        replay(model.env, TRAIN)
        publish_held_out(kafka, prefix)  # their features release the last labels
        read_topic(kafka, outcomes, lambda got: len(got) >= TRAIN // 3, timeout=120)
        assert model.stop() == 0
        chain = read_checkpoint_chain(kafka, snapshots, learner)
        assert len(chain) >= 3, "expected a full checkpoint and deltas"
        # The first delta goes: the restore stops at the full checkpoint, behind the group.
        gone = delta_key(learner, chain[0].sequence, chain[1].sequence)
        tombstone = Producer({"bootstrap.servers": kafka.bootstrap_servers})
        tombstone.produce(snapshots, key=gone.encode(), value=None)
        assert tombstone.flush(30) == 0
        model.start()
        # The first run's outcomes (one per label it learned), then one for every label the
        # restored checkpoint had not learned.
        expected = chain[-1].labels_learned + TRAIN - chain[0].labels_learned
        everything = read_topic(kafka, outcomes, lambda got: len(got) >= expected, timeout=240)
        assert model.stop() == 0
    finally:
        model.stop()
        features.stop()
    assert len(everything) == expected
    assert {decode(Outcome, m.value()).event_id for m in everything} == {
        f"elec2-{n}" for n in range(1, TRAIN + 1)}, "an outcome is missing"
    final = read_checkpoint_chain(kafka, snapshots, learner)
    assert final[-1].labels_learned == TRAIN, "a label was skipped or learned twice"
    assert topic_size(kafka, outcomes) == expected, "a label was learned more than twice"
    text = log.read_text()
    assert f"checkpoint {chain[1].sequence} of {learner} is missing" in text
    assert "rewound the group to the checkpoint's offsets" in text


def test_a_checkpoint_ahead_of_the_groups_offsets_stops_the_service_with_one_line(
    kafka: KafkaSettings, tmp_path: Path,
) -> None:
    prefix = f"rs{uuid.uuid4().hex[:8]}-"
    ensure_topics(kafka, prefix)
    learner, labels = f"{prefix}streamml-model", f"{prefix}labels"
    env = environment(kafka, prefix)
    model = ServiceProcess("services.model", env, tmp_path / "model.log").start()
    try:
        replay(model.env, 200)  # no features service: the labels wait for their features

        def checkpointed() -> bool:
            chain = read_checkpoint_chain(kafka, f"{prefix}model-snapshots", learner)
            return bool(chain) and sum(
                offset for name, offset in chain[-1].offsets.items()
                if name.startswith(f"{labels}:")) == 200

        wait_for(checkpointed, timeout=60, what="a checkpoint covering the 200 labels")
    finally:
        assert model.stop() == 0
    # The group's offsets are moved back by hand (the group is empty now).
    mover = make_consumer(kafka, learner)
    try:
        partitions = mover.list_topics(labels, timeout=10).topics[labels].partitions
        mover.commit(offsets=[TopicPartition(labels, p, 0) for p in partitions],
                     asynchronous=False)
    finally:
        mover.close()
    started = subprocess.run(
        [sys.executable, "-m", "services.model"], env={**model.env}, capture_output=True,
        text=True, timeout=120, check=False,
    )
    assert started.returncode == 2, started.stdout + started.stderr
    [line] = [line for line in started.stderr.splitlines() if "refusing to resume" in line]
    assert line.startswith("model: cannot start: refusing to resume: the checkpoint is ahead "
                           f"of the consumer group at {labels}:")
    assert "Traceback" not in started.stderr
