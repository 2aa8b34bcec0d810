"""The loop that hands fetched records to the streams: faust's, with three changes.

1. **Records of a stream partition are handed over in offset order, each once, from the position
   the partition was sent to** (:class:`~services.features.offsets.ProcessedOffsets`): none
   before the streams resume (faust fetches stream partitions while it recovers tables, and then
   seeks them back); a record below the next expected offset was handed over already and is
   dropped; a record above it is a jump. faust trusts its own last-seen offset, which a recovery
   resets to the committed offset (or to nothing, when none is committed) while records fetched
   before are still being delivered: after a SIGKILL and restart, blocks of records were dropped
   that way.
2. **A jump is read again before it is trusted.** faust assumes that offsets it never saw between
   two records hold nothing (transaction markers, compacted records) and commits past them. Here
   a jump first sends the partition back to the expected offset (a seek run on the client's own
   thread) and drops the rest of the fetched batch for it; only if the same jump comes back are
   the offsets in between empty.
3. **A partition that has records past the expected offset but delivers none is read again.**
   A seek can be overtaken on the client's thread by a batch handed over at the same moment,
   which leaves the fetch position past records that never reached the streams; a later record
   would reveal the jump, but at the end of a stream none comes (seen after a SIGKILL and
   restart: every partition stuck at its committed offset). A partition whose high watermark
   is past the expected offset and that delivered nothing for :data:`STALL_SECONDS` is sent back.
4. **A record is handed over directly while the flow is active.** faust waits for each one with
   ``wait_first(callback(record), suspend_flow.wait())``, which wraps both, and the service's
   stop and crash events, in four tasks: a fifth of the worker's time. A rebalance stops the
   flow first, and a record delivered after a rebalance carries the old generation and is
   skipped by its stream (it is then never finished, so never committed).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Iterable
from enum import Enum
from typing import Any

from aiokafka.errors import IllegalStateError
from faust.transport.consumer import CONSUMER_FETCHING


class Verdict(Enum):
    """What to do with a fetched record."""

    DELIVER = "deliver"
    GAP = "gap"
    """Deliver it; the offsets before it hold no records (the jump came back when read again)."""
    REREAD = "reread"
    """Do not deliver it; read the partition again from the last offset seen."""
    SKIP = "skip"
    """Do not deliver it: it was fetched before the partition was sent back."""


class JumpCheck:
    """Verdicts on fetched records, given the last offset seen per partition; pure logic."""

    def __init__(self) -> None:
        self._rereading: dict[Any, tuple[int, int]] = {}
        self._sent_back: set[Any] = set()

    def new_batch(self) -> None:
        """Records fetched from now on were fetched after every seek so far."""
        self._sent_back.clear()

    def verdict(self, tp: Any, last: int | None, offset: int) -> Verdict:
        """``last`` is the offset last seen on ``tp`` (None after an assignment)."""
        if tp in self._sent_back:
            return Verdict.SKIP
        if last is None or offset <= last + 1:
            self._rereading.pop(tp, None)
            return Verdict.DELIVER
        if self._rereading.get(tp) == (last, offset):
            del self._rereading[tp]
            return Verdict.GAP
        self._rereading[tp] = (last, offset)
        self._sent_back.add(tp)
        return Verdict.REREAD


STALL_SECONDS = 2.0
"""How long an active partition with records past its expected offset may deliver nothing."""
CHECK_EVERY_SECONDS = 0.5


class StallCheck:
    """Partitions with a backlog on the broker that deliver nothing for ``after`` seconds."""

    def __init__(self, after: float = STALL_SECONDS) -> None:
        self._after = after
        self._since: dict[Hashable, float] = {}

    def progressed(self, tp: Hashable, now: float) -> None:
        """``tp`` handed a record over at ``now``."""
        if tp in self._since:
            self._since[tp] = now

    def stalled(self, backlogged: Iterable[Hashable], now: float) -> list[Hashable]:
        """Of the partitions that have records past their expected offset (``backlogged``),
        those that delivered nothing for ``after`` seconds; their clocks restart."""
        waiting = set(backlogged)
        for tp in [tp for tp in self._since if tp not in waiting]:
            del self._since[tp]
        stuck = []
        for tp in waiting:
            since = self._since.setdefault(tp, now)
            if now - since >= self._after:
                stuck.append(tp)
                self._since[tp] = now
        return stuck


def backlogged(consumer: Any, tps: Iterable[Any]) -> list[Any]:
    """Active partitions among ``tps`` whose high watermark is past their expected offset."""
    active = consumer._active_partitions or ()
    offsets = consumer.processed
    found = []
    for tp in tps:
        if tp not in active:
            continue  # paused (recovery, back-pressure): not expected to deliver
        try:
            highwater = consumer.highwater(tp)
        except (IllegalStateError, AssertionError):  # revoked meanwhile: its next owner reads it
            continue
        expected = offsets.expected(tp)
        if highwater is not None and expected is not None and highwater > expected:
            found.append(tp)
    return found


async def read_again(consumer: Any, tp: Any, offset: int) -> None:
    """Move ``tp``'s fetch position back to ``offset``, on the thread that owns the client.

    faust's ``Consumer.seek`` calls the aiokafka client directly from the app's thread, while the
    client's fetcher runs on its own thread and event loop: the position can then be overwritten
    by a batch being handed over at the same moment, and the fetcher is not woken. faust's
    ``seek_wait`` runs the seek on the client's thread and waits until the position is set.
    ``offset`` stays the partition's expected offset: a record below it is dropped as seen.
    """
    try:
        await consumer.seek_wait({tp: offset})
    except IllegalStateError:  # revoked meanwhile: its next owner reads from the committed offset
        consumer.log.info("%s was revoked before it could be read again", tp)


async def drain_messages(
    consumer: Any, fetcher: Any, monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """faust's ``Consumer._drain_messages`` (faust-streaming 0.11 to 0.15) with the changes above.

    ``consumer`` is the faust consumer, with ``processed`` (the worker's
    :class:`~services.features.offsets.ProcessedOffsets`); ``fetcher`` the service whose stop
    ends the loop. A stream partition's records are handed over only once ``processed`` tracks
    it (it was sent to its read position when the streams resumed); other partitions
    (changelogs) are read as faust reads them.
    """
    callback = consumer.callback
    getmany = consumer.getmany
    read_offset = consumer._read_offset
    offsets = consumer.processed
    acks_enabled_for = consumer.app.topics.acks_enabled_for
    flow_control = consumer.app.flow_control
    suspend_flow = consumer.suspend_flow
    jumps = JumpCheck()
    stalls = StallCheck()
    checked_at = monotonic()
    since_yield = 0
    try:
        while not (consumer._stopped.is_set() or fetcher._stopped.is_set()):
            consumer.diag.set_flag(CONSUMER_FETCHING)
            batch = getmany(timeout=1.0)
            await consumer.sleep(0)
            if consumer.should_stop:
                continue
            for tp, offset in offsets.take_rereads():
                consumer.log.info("%s: records handed over from %s on were dropped unprocessed "
                                  "(the streams' queues were emptied): reading them again",
                                  tp, offset)
                await read_again(consumer, tp, offset)
            jumps.new_batch()
            now = monotonic()
            if now - checked_at >= CHECK_EVERY_SECONDS:
                checked_at = now
                for tp in stalls.stalled(backlogged(consumer, offsets.partitions()), now):
                    expected = offsets.expected(tp)
                    consumer.log.warning("%s has records from %s on but delivered none for "
                                         "%.0fs: reading them again", tp, expected, STALL_SECONDS)
                    await read_again(consumer, tp, expected)
            delivered = set()
            async for tp, message in batch:
                since_yield += 1
                if since_yield > 100:
                    await asyncio.sleep(0)
                    since_yield = 0
                offset = message.offset
                expected = offsets.expected(tp)
                if expected is None and acks_enabled_for(message.topic):
                    continue  # not sent to its read position yet (a recovery is under way)
                if expected is None:
                    last = read_offset[tp]
                    if last is not None and offset < last:
                        continue  # already delivered (faust drops these too)
                    verdict = Verdict.DELIVER
                elif offset < expected:
                    continue  # handed over already
                else:
                    verdict = jumps.verdict(tp, expected - 1, offset)
                if verdict is Verdict.SKIP:
                    continue
                if verdict is Verdict.REREAD:
                    consumer.log.info("offsets of %s jump from %s to %s: reading them again",
                                      tp, expected, offset)
                    await read_again(consumer, tp, expected)
                    continue
                offsets.handed_over(tp, offset)
                delivered.add(tp)
                if not suspend_flow.is_set() and flow_control.is_active():
                    await callback(message)
                else:
                    await consumer.wait_first(callback(message), suspend_flow.wait())
                read_offset[tp] = offset
            if delivered:  # after the batch: handing it over may have waited on the streams
                finished_at = monotonic()
                for tp in delivered:
                    stalls.progressed(tp, finished_at)
            consumer.diag.unset_flag(CONSUMER_FETCHING)
    except consumer.consumer_stopped_errors:
        if consumer.transport.app.should_stop:
            consumer.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if consumer.transport.app.should_stop:
            consumer.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        consumer.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        consumer.diag.unset_flag(CONSUMER_FETCHING)
