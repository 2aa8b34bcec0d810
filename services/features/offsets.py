"""Which offsets the features worker reads next and may commit: its own bookkeeping, not faust's.

faust keeps acknowledged offsets in a list per partition and pops the contiguous run at the start
of every commit. Records it handed to a stream but never saw acknowledged (a stream queue cleared
by a rebalance, a commit that failed after the pop) leave a hole in front of that list, and faust
then never commits the partition again; a partition without a committed offset is not sent back
on recovery at all (aiokafka's ``seek_to_committed`` skips it), so records fetched during recovery
are dropped and the next ones delivered as if nothing were missing. Both were seen after a
SIGKILL and restart. This module replaces that bookkeeping with one rule:

* a partition is read from one position: the committed offset, or the beginning when none is
  committed (:meth:`ProcessedOffsets.reset`);
* records are handed over in offset order, each exactly once (:meth:`expected` is the next one);
* the offset committed for a partition is that of the first record handed over and not yet
  finished by its agent (:meth:`committable`): never past a record that was not processed;
* records handed over and not finished when faust empties the streams' queues are read again
  (:meth:`rewind`). faust empties them whenever the flow resumes, and at the end of a recovery it
  resumes the flow only after the partitions were sent to their read positions: records handed
  over in between were dropped unprocessed while later ones were processed. The worker never
  read them again, its commit stayed behind them, and the entities' states passed them, so a
  restart skipped them too: seen after a SIGKILL and restart, the first records after a
  partition's committed offset never got a vector.

Pure logic; keys are faust's ``TP`` (any hashable works).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable


class _Partition:
    __slots__ = ("finished_early", "next_to_read", "pending", "reread", "resume_at")

    def __init__(self, position: int, reread: bool = False) -> None:
        self.next_to_read = position
        self.reread = reread
        """Whether the fetch position must be sent back to :attr:`next_to_read`."""
        self.resume_at = position
        """Where reading resumes once every record handed over is finished."""
        self.pending: deque[int] = deque()
        """Offsets handed over and not yet finished, in order."""
        self.finished_early: set[int] = set()
        """Finished offsets behind an unfinished one (agents finish in order, so rarely used)."""


class ProcessedOffsets:
    """Per partition: the next offset to hand over, and the offset that is safe to commit."""

    def __init__(self) -> None:
        self._partitions: dict[Hashable, _Partition] = {}

    def reset(self, tp: Hashable, position: int) -> None:
        """``tp`` is (again) read from ``position``: whatever was handed over before is forgotten
        (a record finished later from before the reset no longer counts)."""
        self._partitions[tp] = _Partition(position)

    def forget(self, tps: Iterable[Hashable]) -> None:
        """The partitions were revoked: nothing of them is read or committed any more."""
        for tp in tps:
            self._partitions.pop(tp, None)

    def rewind(self) -> None:
        """The streams' queues were emptied: a record handed over and not finished may never be
        processed. Each partition with such records is read again from the first of them (a record
        an agent was still working on is then processed again, which the states recognise)."""
        for tp, partition in self._partitions.items():
            if partition.pending:
                self._partitions[tp] = _Partition(partition.pending[0], reread=True)

    def take_rereads(self) -> list[tuple[Hashable, int]]:
        """(partition, offset) of each partition :meth:`rewind` sent back since the last call:
        its fetch position must go back to that offset."""
        found = []
        for tp, partition in self._partitions.items():
            if partition.reread:
                partition.reread = False
                found.append((tp, partition.next_to_read))
        return found

    def expected(self, tp: Hashable) -> int | None:
        """The offset of the next record to hand over; None if ``tp`` is not tracked."""
        partition = self._partitions.get(tp)
        return None if partition is None else partition.next_to_read

    def handed_over(self, tp: Hashable, offset: int) -> None:
        """The record at ``offset`` (at or after :meth:`expected`) went to its stream."""
        partition = self._partitions.get(tp)
        if partition is None:
            return
        partition.pending.append(offset)
        partition.next_to_read = offset + 1

    def finished(self, tp: Hashable, offset: int) -> None:
        """The agent is done with the record at ``offset`` (its outputs are sent, or it was
        dead-lettered or recognised as a redelivery). A record not handed over since the last
        reset is ignored."""
        partition = self._partitions.get(tp)
        if partition is None:
            return
        pending = partition.pending
        if pending and pending[0] == offset:
            pending.popleft()
            partition.resume_at = offset + 1
            early = partition.finished_early
            while early and pending and pending[0] in early:
                done = pending.popleft()
                early.discard(done)
                partition.resume_at = done + 1
        elif pending and pending[0] < offset <= pending[-1]:
            partition.finished_early.add(offset)

    def committable(self, tp: Hashable) -> int | None:
        """The offset to commit for ``tp``: the first record handed over and not finished, or,
        when all are finished, the one after the last finished. None if ``tp`` is not tracked."""
        partition = self._partitions.get(tp)
        if partition is None:
            return None
        return partition.pending[0] if partition.pending else partition.resume_at

    def partitions(self) -> list[Hashable]:
        """The tracked partitions."""
        return list(self._partitions)
