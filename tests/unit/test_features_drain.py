"""The features worker's fetch loop: records go to the streams in offset order, each once, and
offset jumps are read again before they are trusted."""

from __future__ import annotations

import asyncio
import logging
import types
from collections import defaultdict
from collections.abc import AsyncIterator

from aiokafka.errors import IllegalStateError

from services.features.drain import JumpCheck, StallCheck, Verdict, drain_messages, read_again
from services.features.offsets import ProcessedOffsets


def test_consecutive_records_are_delivered() -> None:
    jumps = JumpCheck()
    jumps.new_batch()
    assert jumps.verdict("p0", None, 40) is Verdict.DELIVER  # first after an assignment
    assert jumps.verdict("p0", 40, 41) is Verdict.DELIVER
    assert jumps.verdict("p0", 40, 40) is Verdict.DELIVER  # right after a seek to 40


def test_a_jump_sends_the_partition_back_and_drops_the_rest_of_its_batch() -> None:
    jumps = JumpCheck()
    jumps.new_batch()
    assert jumps.verdict("p0", 172, 594) is Verdict.REREAD
    assert jumps.verdict("p0", 172, 595) is Verdict.SKIP  # fetched before the seek
    assert jumps.verdict("p1", 10, 11) is Verdict.DELIVER  # other partitions are not affected
    jumps.new_batch()
    assert jumps.verdict("p0", 172, 173) is Verdict.DELIVER  # the missing records came back
    assert jumps.verdict("p0", 173, 174) is Verdict.DELIVER


def test_a_jump_that_comes_back_when_read_again_is_a_real_gap() -> None:
    jumps = JumpCheck()
    jumps.new_batch()
    assert jumps.verdict("p0", 7, 10) is Verdict.REREAD  # e.g. transaction markers at 8 and 9
    jumps.new_batch()
    assert jumps.verdict("p0", 7, 10) is Verdict.GAP
    assert jumps.verdict("p0", 10, 11) is Verdict.DELIVER
    jumps.new_batch()
    assert jumps.verdict("p0", 11, 14) is Verdict.REREAD  # a later jump is checked again


def test_a_partly_filled_jump_is_checked_again_from_where_it_stands() -> None:
    jumps = JumpCheck()
    jumps.new_batch()
    assert jumps.verdict("p0", 7, 20) is Verdict.REREAD
    jumps.new_batch()
    assert jumps.verdict("p0", 7, 15) is Verdict.REREAD  # 8 to 14 are empty, 15 is new
    jumps.new_batch()
    assert jumps.verdict("p0", 7, 15) is Verdict.GAP


class _Client:
    """The parts of faust's consumer that a read-again uses; records the seeks it is asked for."""

    def __init__(self, revoked: bool = False) -> None:
        self.revoked = revoked
        self.seeks: list[dict[str, int]] = []
        self._read_offset: dict[str, int | None] = {"p0": 594}
        self.log = logging.getLogger("test")

    async def seek_wait(self, partitions: dict[str, int]) -> None:
        if self.revoked:
            raise IllegalStateError("No current assignment for partition p0")
        self.seeks.append(partitions)

    async def seek(self, partition: str, offset: int) -> None:
        raise AssertionError("seek runs the client's seek on the wrong thread")


def test_reading_again_seeks_on_the_clients_thread() -> None:
    client = _Client()
    asyncio.run(read_again(client, "p0", 172))
    assert client.seeks == [{"p0": 172}]


def test_a_partition_revoked_before_it_is_read_again_is_left_to_its_next_owner() -> None:
    client = _Client(revoked=True)
    asyncio.run(read_again(client, "p0", 172))  # no error: its next owner reads it
    assert client.seeks == []


class _Flow:
    def is_active(self) -> bool:
        return True


class _Event:
    def __init__(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True


class _Diag:
    def set_flag(self, flag: str) -> None:
        return None

    def unset_flag(self, flag: str) -> None:
        return None


class _Record:
    def __init__(self, tp: str, offset: int) -> None:
        self.tp = tp
        self.topic = tp
        self.offset = offset


class _Consumer:
    """The faust consumer as the fetch loop sees it: batches to fetch, then a stop."""

    consumer_stopped_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, batches: list[list[tuple[str, int]]], offsets: ProcessedOffsets) -> None:
        self.batches = batches
        self.processed = offsets
        self.delivered: list[tuple[str, int]] = []
        self.seeks: list[dict[str, int]] = []
        self._read_offset: dict[str, int | None] = defaultdict(lambda: None)  # as faust's
        self._stopped = _Event()
        self.should_stop = False
        self.suspend_flow = _Event()
        self.diag = _Diag()
        self.log = logging.getLogger("test")
        self.app = types.SimpleNamespace(flow_control=_Flow(), topics=types.SimpleNamespace(
            acks_enabled_for=lambda topic: topic != "changelog"))
        self.transport = types.SimpleNamespace(app=types.SimpleNamespace(should_stop=True))
        self._active_partitions = {"p0", "p1"}
        self.highwaters: dict[str, int] = {}

    def highwater(self, tp: str) -> int | None:
        return self.highwaters.get(tp)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[str, _Record]]:
        if not self.batches:
            self._stopped.set()
            return
        for tp, offset in self.batches.pop(0):
            yield tp, _Record(tp, offset)

    async def sleep(self, seconds: float) -> None:
        return None

    async def callback(self, record: _Record) -> None:
        self.delivered.append((record.tp, record.offset))

    async def seek_wait(self, partitions: dict[str, int]) -> None:
        self.seeks.append(partitions)


def drained(
    batches: list[list[tuple[str, int]]], position: int = 10,
    highwaters: dict[str, int] | None = None, seconds_per_batch: float = 0.0,
) -> _Consumer:
    offsets = ProcessedOffsets()
    offsets.reset("p0", position)
    consumer = _Consumer(batches, offsets)
    consumer.highwaters = highwaters or {}
    clock = iter(range(10_000))
    asyncio.run(drain_messages(consumer, types.SimpleNamespace(_stopped=_Event()),
                               monotonic=lambda: next(clock) * seconds_per_batch))
    return consumer


def test_records_go_to_the_streams_in_order_from_the_position_each_once() -> None:
    consumer = drained([[("p0", 8), ("p0", 9), ("p0", 10), ("p0", 11)], [("p0", 11), ("p0", 12)]])
    assert consumer.delivered == [("p0", 10), ("p0", 11), ("p0", 12)]  # 8, 9: before; 11: twice
    assert consumer.processed.committable("p0") == 10  # handed over, not yet finished


def test_records_fetched_past_a_hole_are_dropped_until_the_hole_is_read_again() -> None:
    consumer = drained([[("p0", 10), ("p0", 13), ("p0", 14)], [("p0", 11), ("p0", 12), ("p0", 13)]])
    assert consumer.seeks == [{"p0": 11}]
    assert consumer.delivered == [("p0", 10), ("p0", 11), ("p0", 12), ("p0", 13)]


def test_a_hole_that_comes_back_when_read_again_holds_no_records() -> None:
    consumer = drained([[("p0", 10), ("p0", 13)], [("p0", 13), ("p0", 14)]])
    assert consumer.seeks == [{"p0": 11}]
    assert consumer.delivered == [("p0", 10), ("p0", 13), ("p0", 14)]


def test_partitions_not_tracked_are_read_as_faust_reads_them() -> None:
    consumer = drained([[("changelog", 3), ("changelog", 7)]])
    assert consumer.delivered == [("changelog", 3), ("changelog", 7)]
    assert consumer.seeks == []


def test_a_stream_partition_is_not_read_before_it_is_sent_to_its_position() -> None:
    # p1 is assigned but recovery has not sent it to its committed offset yet
    consumer = drained([[("p1", 500), ("p1", 501), ("p0", 10)]])
    assert consumer.delivered == [("p0", 10)]


def test_a_partition_with_records_on_the_broker_that_delivers_none_is_read_again() -> None:
    # the fetch position was moved past 10..49 by a batch that overtook the seek: nothing comes
    consumer = drained([[]] * 8, highwaters={"p0": 50}, seconds_per_batch=0.5)
    assert consumer.seeks and all(seek == {"p0": 10} for seek in consumer.seeks)
    assert len(consumer.seeks) <= 2  # once per STALL_SECONDS, not at every check


def test_a_partition_that_is_caught_up_or_delivering_is_left_alone() -> None:
    caught_up = drained([[]] * 8, highwaters={"p0": 10}, seconds_per_batch=0.5)
    assert caught_up.seeks == []
    delivering = drained([[("p0", 10 + n)] for n in range(8)], highwaters={"p0": 50},
                         seconds_per_batch=0.5)
    assert delivering.seeks == []


def test_stall_check_restarts_a_partitions_clock_once_it_is_reported_or_caught_up() -> None:
    stalls = StallCheck(after=2.0)
    assert stalls.stalled(["p0"], 0.0) == []
    stalls.progressed("p0", 1.5)
    assert stalls.stalled(["p0"], 3.0) == []
    assert stalls.stalled(["p0"], 3.5) == ["p0"]
    assert stalls.stalled(["p0"], 4.0) == []
    assert stalls.stalled([], 5.0) == []  # caught up: forgotten
    assert stalls.stalled(["p0"], 9.0) == []  # a new backlog starts a new clock
