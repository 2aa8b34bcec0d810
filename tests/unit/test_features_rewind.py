"""Records handed over to the streams and dropped unprocessed when faust empties the streams'
queues (each time the flow resumes: at the end of every recovery, right after the partitions
were sent to their read positions) are read again."""

from __future__ import annotations

import asyncio
import types

from mode.utils.queues import FlowControlQueue

from services.features.drain import drain_messages
from services.features.offsets import ProcessedOffsets
from services.features.transport import _FlowControl
from tests.unit.test_features_drain import _Consumer, _Event, _Record


def test_records_handed_over_and_not_finished_are_read_again_after_a_rewind() -> None:
    offsets = ProcessedOffsets()
    offsets.reset("p0", 232)
    for offset in (232, 233, 234):
        offsets.handed_over("p0", offset)
    offsets.rewind()  # the streams' queues were emptied
    assert offsets.expected("p0") == 232  # not 235: 232..234 never reached an agent
    assert offsets.committable("p0") == 232
    assert offsets.take_rereads() == [("p0", 232)]
    assert offsets.take_rereads() == []  # once
    offsets.handed_over("p0", 232)
    offsets.finished("p0", 232)
    assert offsets.committable("p0") == 233


def test_a_record_an_agent_finishes_after_the_rewind_does_not_move_the_commit() -> None:
    offsets = ProcessedOffsets()
    offsets.reset("p0", 10)
    offsets.handed_over("p0", 10)  # in an agent's hands when the queue is emptied
    offsets.handed_over("p0", 11)  # in the queue: dropped
    offsets.rewind()
    offsets.finished("p0", 10)
    assert offsets.committable("p0") == 10  # 10 is read (and recognised) again, 11 read again


def test_a_rewind_leaves_partitions_without_unfinished_records_alone() -> None:
    offsets = ProcessedOffsets()
    offsets.reset("p0", 10)
    offsets.handed_over("p0", 10)
    offsets.finished("p0", 10)
    offsets.reset("p1", 5)
    offsets.rewind()
    assert offsets.take_rereads() == []
    assert offsets.expected("p0") == 11 and offsets.committable("p0") == 11


def test_a_partition_sent_to_a_new_position_or_revoked_is_not_read_again() -> None:
    offsets = ProcessedOffsets()
    offsets.reset("p0", 10)
    offsets.handed_over("p0", 10)
    offsets.reset("p1", 20)
    offsets.handed_over("p1", 20)
    offsets.rewind()
    offsets.reset("p0", 7)  # a recovery sent it to its committed offset since
    offsets.forget(["p1"])
    assert offsets.take_rereads() == []


def test_resuming_the_flow_empties_the_queues_and_rewinds() -> None:
    async def scenario() -> tuple[int, int | None]:
        offsets = ProcessedOffsets()
        offsets.reset("p0", 232)
        flow = _FlowControl(offsets)
        queue: FlowControlQueue[int] = FlowControlQueue(flow_control=flow, clear_on_resume=True)
        flow.resume()  # resumed while the changelogs are read
        for offset in (232, 233, 234):  # handed over once the partition was sent to 232 ...
            offsets.handed_over("p0", offset)
            queue.put_nowait(offset)
        flow.resume()  # ... and faust resumes the flow again at the end of the recovery
        return queue.qsize(), offsets.expected("p0")

    assert asyncio.run(scenario()) == (0, 232)


class _ClearingConsumer(_Consumer):
    """Its queues are emptied right after the record at ``clear_after`` was handed over."""

    clear_after = 12

    async def callback(self, record: _Record) -> None:
        await super().callback(record)
        if record.offset == self.clear_after and len(self.delivered) == 3:
            self.processed.rewind()


def test_the_fetch_loop_reads_records_dropped_by_an_emptied_queue_again() -> None:
    offsets = ProcessedOffsets()
    offsets.reset("p0", 10)
    consumer = _ClearingConsumer([[("p0", 10), ("p0", 11), ("p0", 12)],
                                  [("p0", 10), ("p0", 11), ("p0", 12), ("p0", 13)]], offsets)
    asyncio.run(drain_messages(consumer, types.SimpleNamespace(_stopped=_Event())))
    assert consumer.seeks == [{"p0": 10}]
    assert consumer.delivered == [("p0", 10), ("p0", 11), ("p0", 12),
                                  ("p0", 10), ("p0", 11), ("p0", 12), ("p0", 13)]
