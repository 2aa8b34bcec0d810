"""Offset jumps in the features worker's fetch loop are read again before they are trusted."""

from __future__ import annotations

from services.features.drain import JumpCheck, Verdict


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
