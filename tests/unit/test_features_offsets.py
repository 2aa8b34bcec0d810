"""The features worker commits only what its agents finished, and reads each record once."""

from __future__ import annotations

import types
from collections import defaultdict

from services.features.offsets import ProcessedOffsets
from services.features.transport import _Consumer


def tracked(position: int = 10) -> ProcessedOffsets:
    offsets = ProcessedOffsets()
    offsets.reset("p0", position)
    return offsets


def test_a_partition_is_read_from_the_position_it_was_sent_to() -> None:
    offsets = tracked(10)
    assert offsets.expected("p0") == 10
    assert offsets.committable("p0") == 10  # nothing new: the committed offset again
    offsets.handed_over("p0", 10)
    assert offsets.expected("p0") == 11


def test_the_commit_stops_at_the_first_record_not_finished() -> None:
    offsets = tracked(10)
    for offset in (10, 11, 12):
        offsets.handed_over("p0", offset)
    assert offsets.committable("p0") == 10  # handed over is not processed
    offsets.finished("p0", 10)
    assert offsets.committable("p0") == 11
    offsets.finished("p0", 11)
    offsets.finished("p0", 12)
    assert offsets.committable("p0") == 13


def test_a_record_finished_out_of_order_counts_once_the_ones_before_it_are_finished() -> None:
    offsets = tracked(10)
    for offset in (10, 11, 12):
        offsets.handed_over("p0", offset)
    offsets.finished("p0", 12)
    assert offsets.committable("p0") == 10
    offsets.finished("p0", 10)
    assert offsets.committable("p0") == 11
    offsets.finished("p0", 11)
    assert offsets.committable("p0") == 13


def test_a_record_that_is_never_finished_holds_the_commit_back() -> None:
    # e.g. a record delivered just before a rebalance and dropped by its stream
    offsets = tracked(10)
    for offset in (10, 11, 12):
        offsets.handed_over("p0", offset)
    offsets.finished("p0", 10)
    offsets.finished("p0", 12)
    assert offsets.committable("p0") == 11


def test_offsets_that_hold_no_record_are_committed_past() -> None:
    offsets = tracked(10)
    offsets.handed_over("p0", 10)
    offsets.handed_over("p0", 14)  # 11 to 13 were verified empty (read again, same jump)
    offsets.finished("p0", 10)
    offsets.finished("p0", 14)
    assert offsets.committable("p0") == 15
    assert offsets.expected("p0") == 15


def test_a_reset_forgets_what_was_handed_over_before() -> None:
    offsets = tracked(10)
    for offset in (10, 11):
        offsets.handed_over("p0", offset)
    offsets.reset("p0", 10)  # recovery sends the partition back to its committed offset
    offsets.finished("p0", 11)  # a record from before the reset: no longer counts
    assert offsets.committable("p0") == 10
    assert offsets.expected("p0") == 10


def test_revoked_partitions_are_neither_read_nor_committed() -> None:
    offsets = tracked(10)
    offsets.reset("p1", 3)
    offsets.forget(["p0"])
    assert offsets.partitions() == ["p1"]
    assert offsets.expected("p0") is None
    assert offsets.committable("p0") is None
    offsets.handed_over("p0", 10)  # late records of a revoked partition change nothing
    offsets.finished("p0", 10)
    assert offsets.committable("p0") is None


def test_a_commit_empties_the_acknowledgements_faust_keeps_per_partition() -> None:
    # faust's Cython stream iterator appends each acknowledged offset to these; the offset to
    # commit comes from ProcessedOffsets, so the worker's commit must empty them or they grow
    # by one entry per event.
    offsets = tracked(10)
    for offset in (10, 11):
        offsets.handed_over("p0", offset)
        offsets.finished("p0", offset)
    consumer = types.SimpleNamespace(
        processed=offsets,
        _acked=defaultdict(list, {"p0": [10, 11], "p1": [3]}),
        _acked_index=defaultdict(set, {"p0": {10, 11}, "p1": {3}}),
    )
    assert _Consumer._new_offset(consumer, "p0") == 12  # type: ignore[arg-type]
    assert "p0" not in consumer._acked and "p0" not in consumer._acked_index
    assert consumer._acked["p1"] == [3], "another partition's commit empties only its own"
