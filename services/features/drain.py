"""The loop that hands fetched records to the streams: faust's, with two changes.

1. **A jump in a partition's offsets is read again before it is trusted.** faust assumes that
   offsets it never saw between two records hold nothing (transaction markers, compacted
   records), counts them as processed and commits past them. Records can also go missing
   between two fetches for another reason: when recovery seeks the stream partitions back to
   their committed offsets while records are being delivered, the read position moves back and
   the next record seems to jump ahead. Committing past those records loses them (seen after a
   SIGKILL and restart: a block of events per partition never processed). Here a jump first
   sends the partition back to the last offset seen (a seek run on the client's own thread) and
   drops the rest of the fetched batch for it; only if the same jump comes back are the offsets
   in between empty, and then they count as processed, as in faust.
2. **A record is handed over directly while the flow is active.** faust waits for each one with
   ``wait_first(callback(record), suspend_flow.wait())``, which wraps both, and the service's
   stop and crash events, in four tasks: a fifth of the worker's time. A rebalance stops the
   flow first, and a record delivered after a rebalance carries the old generation and is
   skipped by its stream.
"""

from __future__ import annotations

import asyncio
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


async def read_again(consumer: Any, tp: Any, offset: int) -> None:
    """Move ``tp``'s fetch position back to ``offset``, on the thread that owns the client.

    faust's ``Consumer.seek`` calls the aiokafka client directly from the app's thread, while the
    client's fetcher runs on its own thread and event loop: the position can then be overwritten
    by a batch being handed over at the same moment, and the fetcher is not woken. faust's
    ``seek_wait`` runs the seek on the client's thread and waits until the position is set.
    ``offset`` stays the partition's read offset: a record below it is dropped as already seen.
    """
    try:
        await consumer.seek_wait({tp: offset})
    except IllegalStateError:  # revoked meanwhile: its next owner reads from the committed offset
        consumer.log.info("%s was revoked before it could be read again", tp)
        return
    consumer._read_offset[tp] = offset


async def drain_messages(consumer: Any, fetcher: Any) -> None:
    """faust's ``Consumer._drain_messages`` (faust-streaming 0.11 to 0.15) with the changes above.

    ``consumer`` is the faust consumer; ``fetcher`` the service whose stop ends the loop.
    """
    callback = consumer.callback
    getmany = consumer.getmany
    read_offset = consumer._read_offset
    acks_enabled_for = consumer.app.topics.acks_enabled_for
    flow_control = consumer.app.flow_control
    suspend_flow = consumer.suspend_flow
    jumps = JumpCheck()
    since_yield = 0
    try:
        while not (consumer._stopped.is_set() or fetcher._stopped.is_set()):
            consumer.diag.set_flag(CONSUMER_FETCHING)
            batch = getmany(timeout=1.0)
            await consumer.sleep(0)
            if consumer.should_stop:
                continue
            jumps.new_batch()
            async for tp, message in batch:
                since_yield += 1
                if since_yield > 100:
                    await asyncio.sleep(0)
                    since_yield = 0
                offset = message.offset
                last = read_offset[tp]
                if last is not None and offset < last:
                    continue  # already delivered (faust drops these too)
                verdict = (jumps.verdict(tp, last, offset) if acks_enabled_for(message.topic)
                           else Verdict.DELIVER)
                if verdict is Verdict.SKIP:
                    continue
                if verdict is Verdict.REREAD:
                    consumer.log.info("offsets of %s jump from %s to %s: reading them again",
                                      tp, last, offset)
                    await read_again(consumer, tp, last)
                    continue
                if verdict is Verdict.GAP:
                    await consumer._add_gap(tp, last + 1, offset)
                if consumer._commit_every is not None and (
                        consumer._n_acked >= consumer._commit_every):
                    consumer._n_acked = 0
                    await consumer.commit()
                if not suspend_flow.is_set() and flow_control.is_active():
                    await callback(message)
                else:
                    await consumer.wait_first(callback(message), suspend_flow.wait())
                read_offset[tp] = offset
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
