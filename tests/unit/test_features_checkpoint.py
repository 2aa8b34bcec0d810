"""The features worker's state checkpoint: outputs first, then states; offset marks; topology."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import faust
import orjson
import pytest
from confluent_kafka.cimpl import NewTopic

from services.common.runtime import StartupError
from services.features.pipeline import Stage
from services.features.tables import (
    YIELD_EVERY,
    Checkpoint,
    DeliveryFailed,
    Outbox,
    StageTable,
    mark_passed,
    passed,
)
from services.features.topology import check_partitions, internal_topics, stage_topic, table_name


class FakeProducer:
    """Records every send; each delivery is a future the test resolves."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, int | None]] = []
        self.deliveries: list[asyncio.Future[Any]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None, timestamp: float | None,
                   headers: list[tuple[str, bytes]] | None) -> asyncio.Future[Any]:
        await asyncio.sleep(0)  # enqueueing may wait for room in a batch
        self.sent.append((topic, key, value, partition))
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.deliveries.append(delivery)
        return delivery

    def deliver_all(self) -> None:
        for delivery in self.deliveries:
            if not delivery.done():
                delivery.set_result(None)


class FakeTopic:
    def get_topic_name(self) -> str:
        return "g-entity-user-home-changelog"


class FakeTable:
    def __init__(self) -> None:
        self.data: dict[bytes, Any] = {}
        self.changelog_topic = FakeTopic()


def stage_table() -> StageTable:
    return StageTable(cast("faust.Table[bytes, Any]", FakeTable()))


async def settle_loop() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_states_are_written_only_after_the_outputs_sent_before_them_are_delivered() -> None:
    async def scenario() -> None:
        producer = FakeProducer()
        outbox = Outbox(lambda: producer.send)
        table = stage_table()
        await outbox.send("features", b"u-1", b"vector")
        table.put(b"u-1", {"seq": 1}, 3)
        checkpoint = asyncio.create_task(Checkpoint([table], outbox)())
        await settle_loop()
        assert [topic for topic, *_ in producer.sent] == ["features"]  # waits for the vector
        producer.deliver_all()
        await settle_loop()
        assert producer.sent[1] == ("g-entity-user-home-changelog", b"u-1", b'{"seq":1}', 3)
        assert not checkpoint.done()  # and then for the state itself
        producer.deliver_all()
        await checkpoint

    asyncio.run(scenario())


def test_a_lost_output_fails_the_checkpoint_before_any_state_is_written() -> None:
    async def scenario() -> None:
        producer = FakeProducer()
        outbox = Outbox(lambda: producer.send)
        table = stage_table()
        await outbox.send("features", b"u-1", b"vector")
        table.put(b"u-1", {"seq": 1}, 0)
        producer.deliveries[0].set_exception(RuntimeError("broker said no"))
        with pytest.raises(DeliveryFailed, match="broker said no"):
            await Checkpoint([table], outbox)()
        assert [topic for topic, *_ in producer.sent] == ["features"]

    asyncio.run(scenario())


def test_a_checkpoint_writes_states_as_they_were_when_it_began() -> None:
    async def scenario() -> None:
        producer = FakeProducer()
        outbox = Outbox(lambda: producer.send)
        table = stage_table()
        state: dict[str, Any] = {"seq": 1}
        await outbox.send("features", b"u-1", b"vector")
        table.put(b"u-1", state, 0)
        checkpoint = asyncio.create_task(Checkpoint([table], outbox)())
        await settle_loop()
        state["seq"] = 2  # a later event, whose output is not delivered yet
        producer.deliver_all()
        await settle_loop()
        producer.deliver_all()
        await checkpoint
        assert orjson.loads(producer.sent[1][2] or b"") == {"seq": 1}
        assert table.copy_changed() == []  # the later change is written by the next checkpoint
        table.put(b"u-1", state, 0)
        assert table.copy_changed() == [(b"u-1", 0, b'{"seq":2}')]

    asyncio.run(scenario())


def test_checkpoints_run_one_at_a_time_so_older_copies_are_written_first() -> None:
    async def scenario() -> None:
        producer = FakeProducer()
        outbox = Outbox(lambda: producer.send)
        table = stage_table()
        checkpoint = Checkpoint([table], outbox)
        keys = [f"u-{n:02}".encode() for n in range(2 * YIELD_EVERY)]
        for key in keys:
            table.put(key, {"seq": 1}, 0)
        first = asyncio.create_task(checkpoint())  # a commit's flush: many states to write
        await settle_loop()
        table.put(keys[-1], {"seq": 2}, 0)
        second = asyncio.create_task(checkpoint())  # a rebalance's flush, meanwhile
        while not (first.done() and second.done()):
            producer.deliver_all()
            await settle_loop()
        await asyncio.gather(first, second)
        last = [orjson.loads(value or b"") for _, key, value, _ in producer.sent
                if key == keys[-1]]
        assert last == [{"seq": 1}, {"seq": 2}]

    asyncio.run(scenario())


def test_an_entity_changed_many_times_is_written_once_per_checkpoint() -> None:
    table = stage_table()
    for seq in range(1, 4):
        table.put(b"u-1", {"seq": seq}, 2)
    table.put(b"u-2", {"seq": 1}, 1)
    assert table.copy_changed() == [(b"u-1", 2, b'{"seq":3}'), (b"u-2", 1, b'{"seq":1}')]
    assert table.copy_changed() == []
    assert len(table) == 2


def test_offset_marks_are_per_source_topic() -> None:
    state: dict[str, Any] = {"seq": 3}
    assert not passed(None, "events", 0)
    assert not passed(state, "events", 0)
    mark_passed(state, "events", 10)
    assert passed(state, "events", 10)
    assert passed(state, "events", 4)
    assert not passed(state, "events", 11)
    assert not passed(state, "g-by-user-home", 0)
    assert orjson.loads(orjson.dumps(state)) == {"seq": 3, "offsets": {"events": 10}}


def test_internal_topics_have_as_many_partitions_as_events() -> None:
    user, item = Stage("user", []), Stage("item", [])
    topics = internal_topics("g", [user, item], user, 6)
    assert [topic.topic for topic in topics] == [
        "g-by-user-home", "g-entity-user-home-changelog", "g-by-item", "g-entity-item-changelog",
    ]
    assert {topic.num_partitions for topic in topics} == {6}
    assert stage_topic("g", item, False) == "g-by-item"
    assert table_name(user, True) == "entity-user-home"


class FakeAdmin:
    def __init__(self, partitions: dict[str, int]) -> None:
        self.partitions = partitions

    def list_topics(self, topic: str, timeout: float) -> Any:
        class Listed:
            def __init__(self, count: int) -> None:
                self.error = None
                self.partitions = dict.fromkeys(range(count))

        class Metadata:
            topics = {topic: Listed(self.partitions[topic])} if topic in self.partitions else {}

        return Metadata()


def test_an_internal_topic_with_another_partition_count_stops_the_worker() -> None:
    wanted = [NewTopic("g-by-item", num_partitions=4, replication_factor=1)]
    check_partitions(cast(Any, FakeAdmin({"g-by-item": 4})), wanted)
    check_partitions(cast(Any, FakeAdmin({})), wanted)  # missing: created afterwards
    with pytest.raises(StartupError, match=r"g-by-item has 8 partitions but .* needs 4"):
        check_partitions(cast(Any, FakeAdmin({"g-by-item": 8})), wanted)
