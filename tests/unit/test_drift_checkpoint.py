"""Drift checkpoints: monitors restored from one go on as if never stopped, and each checkpoint
commits the alerts, the monitors and the offsets they cover in one transaction."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import TopicPartition
from prometheus_client import CollectorRegistry

from schemas.alerts import DriftAlert
from schemas.codec import decode
from schemas.snapshots import DriftSnapshot
from services.drift.checkpoint import (
    DriftCheckpointer,
    dump_monitors,
    load_monitors,
    restore_monitors,
    settings_fingerprint,
)
from services.drift.handler import DriftHandler, DriftMetrics
from tests.unit.fakes import FakeProducer, ManualClock, ManualMonotonic, message
from tests.unit.test_drift_handler import (
    DETECTED_AT,
    champion_outcome,
    features,
    pipeline,
)

CHANGE = 3000


def stream(seed: int = 11, length: int = 8000) -> list[tuple[str, bytes]]:
    """Features and champion outcomes whose feature, label rate, scores and errors all change
    at ``CHANGE``."""
    rng, records = random.Random(seed), []
    for n in range(1, length + 1):
        changed = n > CHANGE
        records.append(("features", features(n, rng.gauss(1.0 if changed else 0.0, 1.0))))
        label = rng.random() < (0.5 if changed else 0.3)
        score = rng.betavariate(3, 4) if changed else rng.betavariate(2, 5)
        correct = rng.random() >= (0.6 if changed else 0.1)
        records.append(("outcomes", champion_outcome(n, label, score, correct)))
    return records


def handler_with(producer: FakeProducer, **drift: Any) -> DriftHandler:
    return DriftHandler(pipeline(**drift), producer, "drift-alerts",
                        DriftMetrics(CollectorRegistry()), clock=ManualClock(DETECTED_AT))


def alerts(producer: FakeProducer) -> list[tuple[str, str, int]]:
    found = [decode(DriftAlert, record.value) for record in producer.on("drift-alerts")
             if record.value is not None]
    return [(alert.kind, alert.target, alert.stream_position) for alert in found]


@pytest.mark.parametrize("stop_at", [1500, 6000, 6600, 9000])
def test_monitors_restored_from_a_checkpoint_raise_the_alerts_of_an_uninterrupted_run(
    stop_at: int,
) -> None:
    records = stream()
    whole = FakeProducer()
    uninterrupted = handler_with(whole)
    for offset, (topic, value) in enumerate(records):
        uninterrupted.handle(message(topic, value, offset=offset))
    assert {kind for kind, _, _ in alerts(whole)} == {"covariate", "label", "prediction",
                                                      "concept"}

    before, after = FakeProducer(), FakeProducer()
    first = handler_with(before)
    for offset, (topic, value) in enumerate(records[:stop_at]):
        first.handle(message(topic, value, offset=offset))
    checkpoint = dump_monitors(first.state())
    second = handler_with(after)
    second.restore(load_monitors(checkpoint))
    for offset, (topic, value) in enumerate(records[stop_at:], start=stop_at):
        second.handle(message(topic, value, offset=offset))

    assert alerts(before) + alerts(after) == alerts(whole)
    assert second.positions() == uninterrupted.positions()


def test_a_checkpoint_of_other_drift_settings_is_not_restored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = handler_with(FakeProducer())
    for offset, (topic, value) in enumerate(stream()[:4000]):
        old.handle(message(topic, value, offset=offset))
    snapshot = DriftSnapshot(
        created_at=datetime.now(UTC), library_versions=_versions(),
        settings_fingerprint=settings_fingerprint(pipeline()), offsets={"features:0": 2000},
        observations=4000, alerts_raised=0, state=dump_monitors(old.state()),
    )
    changed = pipeline(covariate={"psi_threshold": 0.3})
    fresh = handler_with(FakeProducer(), covariate={"psi_threshold": 0.3})
    assert settings_fingerprint(changed) != settings_fingerprint(pipeline())
    assert restore_monitors(snapshot, fresh, changed) is False
    assert "the drift or label settings of the spec changed" in caplog.text
    assert fresh.positions()["covariate"] == 0

    same = handler_with(FakeProducer())
    assert restore_monitors(snapshot, same, pipeline()) is True
    assert same.positions()["covariate"] == 2000


def _versions() -> dict[str, str]:
    from services.common.library_versions import installed_versions
    from services.drift.checkpoint import STATE_FORMAT

    return installed_versions(STATE_FORMAT)


class Transactions(FakeProducer):
    """A producer that records transaction calls next to what it produced."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.offsets: list[list[TopicPartition]] = []

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def send_offsets_to_transaction(self, positions: list[TopicPartition], metadata: object,
                                    timeout: float) -> None:
        self.calls.append("offsets")
        self.offsets.append(positions)

    def commit_transaction(self, timeout: float) -> None:
        self.calls.append(f"commit after {len(self.records)} records")

    def consumer_group_metadata(self) -> object:
        return object()


def test_a_checkpoint_is_due_at_once_after_an_alert_and_commits_monitors_with_offsets() -> None:
    wire, clock = Transactions(), ManualMonotonic()
    handler = handler_with(wire)
    checkpointer = DriftCheckpointer(
        wire, wire, "drift-state", "drift-group", handler, "f", {"features:0": 0,
                                                                "outcomes:0": 0},
        interval=60.0, monotonic=clock,
    )
    checkpointer.begin()
    assert not checkpointer.due(), "nothing processed"
    records = stream()
    offset = 0
    while not checkpointer.due():
        topic, value = records[offset]
        consumed = message(topic, value, offset=offset // 2)
        handler.handle(consumed)
        checkpointer.processed(consumed)
        offset += 1
    assert handler.alerts_raised == 1, "due at the first alert, not at the interval"
    checkpointer.commit()

    [snapshot_record] = wire.on("drift-state")
    assert snapshot_record.key == b"drift-group"
    assert snapshot_record.value is not None
    snapshot = decode(DriftSnapshot, snapshot_record.value)
    # Records alternate features, outcomes: each topic's next offset is how many it gave.
    expected = {"features:0": (offset + 1) // 2, "outcomes:0": offset // 2}
    assert snapshot.offsets == expected
    assert snapshot.observations == offset and snapshot.alerts_raised == 1
    assert wire.calls == ["begin", "offsets", f"commit after {len(wire.records)} records",
                          "begin"]
    assert {(p.topic, p.partition, p.offset) for p in wire.offsets[0]} == {
        ("features", 0, expected["features:0"]), ("outcomes", 0, expected["outcomes:0"])}
    assert wire.records[-1].topic == "drift-state", "the alert went out before the checkpoint"
    restored = load_monitors(snapshot.state)
    assert restored.covariate.position == handler.covariate.position

    assert not checkpointer.due(), "nothing new since"
    consumed = message(*records[offset], offset=offset // 2)
    handler.handle(consumed)
    checkpointer.processed(consumed)
    assert not checkpointer.due()
    clock.advance(60.0)
    assert checkpointer.due(), "the interval passed with a message processed"
