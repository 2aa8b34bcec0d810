"""Offset jumps in the features worker's fetch loop are read again before they are trusted."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.errors import IllegalStateError

from services.features.drain import JumpCheck, Verdict, read_again


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


def test_reading_again_seeks_on_the_clients_thread_and_keeps_the_last_offset_seen() -> None:
    client = _Client()
    asyncio.run(read_again(client, "p0", 172))
    assert client.seeks == [{"p0": 172}]
    assert client._read_offset["p0"] == 172  # records below it are dropped as already seen


def test_a_partition_revoked_before_it_is_read_again_is_left_to_its_next_owner() -> None:
    client = _Client(revoked=True)
    asyncio.run(read_again(client, "p0", 172))
    assert client._read_offset["p0"] == 594
