"""Checkpoint payloads: state round-trips, and snapshots from other library versions are refused."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Message
from river import linear_model

from schemas.codec import decode, encode
from schemas.snapshots import ModelSnapshot
from services.common.blocking_call import CallHung
from services.common.resume import decide, topic_partition
from services.common.settings import KafkaSettings
from services.model.checkpoint import (
    SnapshotIncompatible,
    TransactionalCheckpointer,
    check_compatible,
    dump_state,
    library_versions,
    load_state,
    read_checkpoint_chain,
)
from services.model.pending import BoundedMap
from tests.unit.fakes import message


def snapshot(state: dict[str, object], versions: dict[str, str]) -> ModelSnapshot:
    return ModelSnapshot(
        model="logreg", model_version=1, created_at=datetime(2026, 1, 1, tzinfo=UTC),
        library_versions=versions, offsets={"features:0": 10}, labels_learned=3,
        state=dump_state(state),
    )


def test_a_trained_model_survives_the_snapshot_round_trip() -> None:
    model: Any = linear_model.LogisticRegression()
    for n in range(50):
        model.learn_one({"x": n % 7, "y": n % 3}, n % 2 == 0)
    wire = encode(snapshot({"model": model, "labels": 50}, library_versions()))
    restored = load_state(decode(ModelSnapshot, wire))
    assert isinstance(restored, dict)
    assert restored["labels"] == 50
    probe = {"x": 3.0, "y": 1.0}
    assert restored["model"].predict_proba_one(probe) == model.predict_proba_one(probe)


@pytest.mark.parametrize("changed", ["river", "python", "state_format"])
def test_a_snapshot_from_other_library_versions_is_refused_with_a_clear_error(
    changed: str,
) -> None:
    versions = dict(library_versions())
    versions[changed] = "0.1"
    with pytest.raises(SnapshotIncompatible, match=changed) as raised:
        load_state(snapshot({"model": None}, versions))
    assert "start fresh" in str(raised.value)


def test_patch_releases_are_compatible() -> None:
    current = library_versions()
    patched = {**current, "river": current["river"] + ".9"}
    check_compatible(patched, current)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _Transactions:
    """The producer and consumer calls a checkpoint makes; each commit takes ``commit_seconds``."""

    def __init__(self, clock: _Clock) -> None:
        self.clock, self.commits, self.commit_seconds = clock, 0, 0.0
        self.produced: list[tuple[str, bytes | None]] = []  # (key, value) of each record

    def produce(self, topic: str, key: bytes, value: bytes | None) -> None:
        self.produced.append((key.decode(), value))

    def send_offsets_to_transaction(self, *args: object) -> None: ...

    def begin_transaction(self) -> None: ...

    def commit_transaction(self, timeout: float) -> None:
        self.clock.now += self.commit_seconds
        self.commits += 1

    def assignment(self) -> list[object]:
        return []

    def position(self, partitions: list[object]) -> list[object]:
        return []


class _Source:
    labels_learned = 0
    revision = 0

    def state(self) -> dict[str, object]:
        return {"n": self.revision}

    def champion(self) -> tuple[str, int]:
        return "m", 1


def test_checkpoints_slow_down_when_a_snapshot_is_slow(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr("services.model.checkpoint.time.monotonic", clock)
    wire, source = _Transactions(clock), _Source()
    checkpointer = TransactionalCheckpointer(
        wire, wire, "snapshots", "m", source, interval=1.0, time_share=0.25,  # type: ignore[arg-type]
    )

    def due_after(seconds: float) -> bool:
        clock.now += seconds
        source.revision += 1  # something changed
        return checkpointer.due()

    assert not due_after(0.9)
    assert due_after(0.1)  # a fast checkpoint: every interval
    checkpointer.commit()
    assert not due_after(0.99)
    assert due_after(0.01)
    wire.commit_seconds = 2.0  # the state grew: a snapshot now takes 2 s
    checkpointer.commit()
    assert checkpointer.last_seconds == pytest.approx(2.0)
    assert not due_after(5.9)  # 2 s of checkpoint is followed by at least 6 s without one
    assert due_after(0.1)
    wire.commit_seconds = 0.1
    checkpointer.commit()
    assert due_after(1.0)  # fast again: back to the interval


def test_a_commit_slowed_by_an_outage_does_not_stretch_the_pace_past_max_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = _Clock()
    monkeypatch.setattr("services.model.checkpoint.time.monotonic", clock)
    wire, source = _Transactions(clock), _Source()
    checkpointer = TransactionalCheckpointer(
        wire, wire, "snapshots", "m", source, interval=1.0, time_share=0.25,  # type: ignore[arg-type]
        max_wait=15.0,
    )
    source.revision += 1
    wire.commit_seconds = 20.0  # the commit waited for a restarting broker
    checkpointer.commit()
    clock.now += 14.9
    source.revision += 1
    assert not checkpointer.due()
    clock.now += 0.1
    assert checkpointer.due(), "the open transaction must commit long before it times out (60 s)"


class _FlakyCommits(_Transactions):
    """Commits fail ``failures`` times with ``error`` before one succeeds."""

    def __init__(self, clock: _Clock, error: KafkaError, failures: int) -> None:
        super().__init__(clock)
        self.error, self.failures, self.attempts = error, failures, 0

    def commit_transaction(self, timeout: float) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise KafkaException(self.error)
        super().commit_transaction(timeout)


def _failing_commits(
    monkeypatch: pytest.MonkeyPatch, error: KafkaError, failures: int,
) -> tuple[_FlakyCommits, TransactionalCheckpointer]:
    """A checkpointer with something to commit, whose first ``failures`` commits fail."""
    clock = _Clock()
    monkeypatch.setattr("services.model.checkpoint.time.monotonic", clock)
    wire, source = _FlakyCommits(clock, error, failures), _Source()
    checkpointer = TransactionalCheckpointer(wire, wire, "snapshots", "m", source)  # type: ignore[arg-type]
    source.revision += 1
    return wire, checkpointer


def test_a_retriable_transaction_error_is_retried_until_the_commit_succeeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timed_out = KafkaError(KafkaError._TIMED_OUT, "coordinator not reachable", retriable=True)
    wire, checkpointer = _failing_commits(monkeypatch, timed_out, failures=2)
    checkpointer.commit()
    assert (wire.attempts, wire.commits, checkpointer.checkpoints) == (3, 1, 1)


def test_a_transaction_error_that_cannot_be_retried_is_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fenced = KafkaError(KafkaError._FENCED, "fenced", fatal=True)
    wire, checkpointer = _failing_commits(monkeypatch, fenced, failures=1)
    with pytest.raises(KafkaException):
        checkpointer.commit()
    assert (wire.attempts, checkpointer.checkpoints) == (1, 0)


class _HangingOffsets(_Transactions):
    """``send_offsets_to_transaction`` blocks until released, past its timeout (librdkafka
    #5511 when the group coordinator dies)."""

    def __init__(self, clock: _Clock) -> None:
        super().__init__(clock)
        self.release = threading.Event()

    def send_offsets_to_transaction(self, *args: object) -> None:
        self.release.wait()

    def consumer_group_metadata(self) -> object:
        return object()


def test_a_transaction_call_blocked_past_its_timeout_fails_the_checkpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("services.common.transactions.OFFSETS_TIMEOUT_S", 0.01)
    monkeypatch.setattr("services.common.transactions.HANG_GRACE_S", 0.04)
    wire, source = _HangingOffsets(_Clock()), _Source()
    checkpointer = TransactionalCheckpointer(
        wire, wire, "snapshots", "m", source, offsets={"features:0": 5})  # type: ignore[arg-type]
    source.revision += 1
    try:
        with pytest.raises(CallHung, match="adding the input offsets to the transaction"):
            checkpointer.commit()
    finally:
        wire.release.set()
    assert (wire.commits, checkpointer.checkpoints) == (0, 0), "nothing may be committed"


class _Growing(_Source):
    """A source whose named store gains ``per_commit`` ids between commits."""

    def __init__(self, per_commit: int) -> None:
        self.ids = BoundedMap[int](capacity=100_000, name="ids")
        self.per_commit = per_commit

    def state(self) -> dict[str, object]:
        return {"ids": self.ids}

    def grow(self) -> None:
        self.revision += 1
        for _ in range(self.per_commit):
            self.ids.put(f"id-{len(self.ids)}", len(self.ids))


def _series(checkpointer: TransactionalCheckpointer, wire: _Transactions, source: _Growing,
            commits: int) -> list[tuple[str, int | None, int | None]]:
    """Commit ``commits`` times; (key, sequence, base sequence) of what each wrote, in order
    (tombstones have no sequence)."""
    wire.produced.clear()
    for _ in range(commits):
        source.grow()
        checkpointer.commit()
    written = []
    for key, value in wire.produced:
        snapshot = None if value is None else decode(ModelSnapshot, value)
        written.append((key, None if snapshot is None else snapshot.sequence,
                        None if snapshot is None else snapshot.base_sequence))
    return written


def test_checkpoints_are_full_then_deltas_until_a_full_one_supersedes_them(
) -> None:
    wire, source = _Transactions(_Clock()), _Growing(per_commit=10)
    source.ids.put("id-0", 0)
    checkpointer = TransactionalCheckpointer(
        wire, wire, "snapshots", "m", source, max_deltas=2, delta_budget=100.0,  # type: ignore[arg-type]
    )
    assert _series(checkpointer, wire, source, commits=5) == [
        ("m", 1, None), ("m/delta/1/2", 2, 1), ("m/delta/1/3", 3, 1),
        ("m", 4, None), ("m/delta/1/2", None, None), ("m/delta/1/3", None, None),
        ("m/delta/4/5", 5, 4),
    ]
    assert checkpointer.last_full_size > checkpointer.last_size


def test_deltas_stop_once_they_add_up_to_the_full_checkpoint() -> None:
    wire, source = _Transactions(_Clock()), _Growing(per_commit=1_000)
    checkpointer = TransactionalCheckpointer(wire, wire, "snapshots", "m", source)  # type: ignore[arg-type]
    kinds, since_full, full_size = [], 0, 0
    for _ in range(8):
        due_full = full_size == 0 or since_full >= full_size
        [(_, _, base)] = [w for w in _series(checkpointer, wire, source, 1) if w[1] is not None]
        kinds.append("full" if base is None else "delta")
        assert (base is None) == due_full, kinds
        if base is None:
            since_full, full_size = 0, checkpointer.last_size
        else:
            since_full += checkpointer.last_size
    assert kinds.count("full") >= 2 and kinds.count("delta") >= 2, kinds


def test_after_a_restore_the_series_goes_on_with_a_full_checkpoint_and_ends_the_old_deltas(
) -> None:
    def restored(sequence: int, base: int | None) -> ModelSnapshot:
        return snapshot({}, library_versions()).model_copy(
            update={"sequence": sequence, "base_sequence": base})

    wire, source = _Transactions(_Clock()), _Growing(per_commit=10)
    checkpointer = TransactionalCheckpointer(
        wire, wire, "snapshots", "m", source,  # type: ignore[arg-type]
        restored=[restored(5, None), restored(6, 5), restored(7, 5)],
    )
    assert _series(checkpointer, wire, source, commits=2) == [
        ("m", 8, None), ("m/delta/5/6", None, None), ("m/delta/5/7", None, None),
        ("m/delta/8/9", 9, 8),
    ]


# -- a chain cut short, and the offsets every checkpoint records ------------------------------


def _chain_records(snapshots: list[tuple[str, ModelSnapshot | None]]) -> list[Message]:
    return [message("snapshots", None if value is None else encode(value), key.encode(), 0, n)
            for n, (key, value) in enumerate(snapshots)]


def test_a_missing_delta_restores_up_to_the_gap_which_the_group_is_found_ahead_of(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    def written(sequence: int, base: int | None, read: int) -> ModelSnapshot:
        return snapshot({}, library_versions()).model_copy(update={
            "sequence": sequence, "base_sequence": base, "offsets": {"features:0": read}})

    records = _chain_records([
        ("m", written(1, None, 10)), ("m/delta/1/2", written(2, 1, 20)),
        # delta 3 is gone
        ("m/delta/1/4", written(4, 1, 40)), ("m/delta/1/5", written(5, 1, 50)),
    ])
    monkeypatch.setattr("services.model.checkpoint.committed_records",
                        lambda kafka, topic: iter(records))
    chain = read_checkpoint_chain(KafkaSettings(), "snapshots", "m")
    assert [s.sequence for s in chain] == [1, 2]
    assert "checkpoint 3 of m is missing" in caplog.text
    assert "leaving out the 2 deltas after the gap (4 to 5)" in caplog.text
    # The group committed the offsets of checkpoint 5 with it: the restore is behind, and read
    # again from its own offsets rather than resumed at the group's.
    decision = decide(chain[-1].offsets, {"features:0": 50})
    assert (decision.action, decision.start) == ("rewind", {"features:0": 20})


class _Assigned(_Transactions):
    """A consumer assigned ``positions`` (-1001: nothing read there yet) whose offset commits
    are recorded."""

    def __init__(self, clock: _Clock, positions: dict[str, int]) -> None:
        super().__init__(clock)
        self.positions = positions
        self.sent: list[dict[str, int]] = []

    def assignment(self) -> list[object]:
        return [topic_partition(key, -1001) for key in self.positions]

    def position(self, partitions: list[object]) -> list[object]:
        return [topic_partition(key, offset) for key, offset in self.positions.items()]

    def consumer_group_metadata(self) -> object:
        return "group"

    def send_offsets_to_transaction(self, *args: object) -> None:
        positions = args[0]
        assert isinstance(positions, list)
        self.sent.append({f"{tp.topic}:{tp.partition}": tp.offset for tp in positions})


def test_every_checkpoint_records_and_commits_every_partition_the_state_knows() -> None:
    # The consumer has fetched far ahead (a batch in hand): positions are not what is processed.
    wire, source = _Assigned(_Clock(), {"features:0": 500, "labels:0": -1001}), _Growing(1)
    checkpointer = TransactionalCheckpointer(
        wire, wire, "snapshots", "m", source,  # type: ignore[arg-type]
        offsets={"features:0": 100, "labels:0": 80, "drift-alerts:0": 0},
    )
    for features_read in (130, 140):
        for offset in range(features_read - 10, features_read):
            checkpointer.processed(Message(topic="features", partition=0, offset=offset))
        source.grow()
        checkpointer.commit()
    written = [decode(ModelSnapshot, value).offsets for _, value in wire.produced
               if value is not None]
    expected = [{"features:0": read, "labels:0": 80, "drift-alerts:0": 0} for read in (130, 140)]
    assert written == expected
    assert wire.sent == expected  # the group's offsets always equal the newest checkpoint's


def test_what_before_commit_produces_is_in_the_transaction_it_commits() -> None:
    """A model release produced as a commit begins is committed with that checkpoint, and its
    change alone (a heartbeat release with nothing else new) is enough to commit."""
    wire, source = _Transactions(_Clock()), _Source()
    commits_seen: list[int] = []

    def release() -> None:
        commits_seen.append(wire.commits)
        wire.produce("releases", b"release", b"models")
        source.revision += 1

    checkpointer = TransactionalCheckpointer(wire, wire, "snapshots", "m", source,  # type: ignore[arg-type]
                                             before_commit=release)
    checkpointer.commit()
    assert commits_seen == [0]
    assert wire.commits == 1
    assert [key for key, _ in wire.produced] == ["release", "m"]
    assert checkpointer.checkpoints == 1
