"""A faust transport for the features worker: faust's aiokafka transport with four changes.

* The consumer does not sit on new records for up to 1.5 s. faust's aiokafka driver fixes
  ``fetch_max_wait_ms=1500``; aiokafka keeps one fetch request in flight per broker, and a
  partition that just returned records is left out of that request, so new records on it wait
  until the request times out. A short wait keeps each hop at a few ms, at the cost of more
  (cheap, empty) fetches while the stream is idle.
* The consumer's loop that hands records to the streams verifies offset jumps before it commits
  past them and hands records over without four tasks each (:mod:`services.features.drain`).
* Which records are read and which offsets are committed follows the app's
  :class:`~services.features.offsets.ProcessedOffsets`, not faust's list of acknowledgements:
  every stream partition is sent to its committed offset (or its beginning) when streams resume,
  and a commit never goes past a record its agent has not finished.
* The producer runs the app's ``before_flush`` hooks before every flush.
* Whenever faust empties the streams' queues (it does so each time the flow resumes), the records
  handed over and not finished are read again (:meth:`ProcessedOffsets.rewind`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types.tuples import ack_lock
from mode.utils.futures import notify
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent

from services.features.drain import drain_messages
from services.features.offsets import ProcessedOffsets

DEFAULT_FETCH_MAX_WAIT_MS = 5


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = getattr(
            transport.app, "fetch_max_wait_ms", DEFAULT_FETCH_MAX_WAIT_MS
        )
        consumer._fetch_min_bytes = getattr(transport.app, "fetch_min_bytes", 1)
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    @property
    def processed(self) -> ProcessedOffsets:
        offsets: ProcessedOffsets = getattr(self.app, "processed")  # noqa: B009 - set by our app
        return offsets

    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:
        await drain_messages(self, fetcher)

    async def perform_seek(self) -> None:
        """Send every assigned partition to its committed offset, and every stream partition
        without one to its beginning, then read each stream partition from there.

        aiokafka's ``seek_to_committed`` leaves a partition without a committed offset (or with
        offset 0) wherever its fetcher got to, which during a recovery can be well past records
        that were fetched and then dropped.
        """
        committed = await self.seek_to_committed()
        acks_enabled_for = self.app.topics.acks_enabled_for
        stream_tps = [tp for tp in self.assignment() if acks_enabled_for(tp.topic)]
        unset = [tp for tp in stream_tps if (committed.get(tp) or 0) <= 0]
        starts = {tp: committed[tp] for tp in stream_tps if tp not in unset}
        if unset:
            beginnings = await self.earliest_offsets(*unset)
            await self.seek_wait({tp: beginnings[tp] for tp in unset})
            starts.update({tp: beginnings[tp] for tp in unset})
        for tp, position in starts.items():
            self.processed.reset(tp, position)
        self._read_offset.update({
            tp: offset if offset is not None and offset >= 0 else None
            for tp, offset in committed.items()
        })
        self._committed_offset.update({
            tp: offset for tp, offset in committed.items() if offset is not None and offset > 0
        })

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        await super().on_partitions_revoked(revoked)
        self.processed.forget(revoked)

    def ack(self, message: Any) -> bool:
        """Mark ``message`` acknowledged by its streams (so a shutdown stops waiting for it).

        Offsets to commit come from :attr:`processed`, so faust's per-partition lists of
        acknowledged offsets are not kept.
        """
        with ack_lock:
            if message.acked:
                return False
            message.acked = True
            self._unacked_messages.discard(message)
            notify(self._waiting_for_ack)
            return True

    def _filter_tps_with_pending_acks(self, topics: Any = None) -> Any:
        return (tp for tp in self.processed.partitions()
                if topics is None or tp in topics or getattr(tp, "topic", None) in topics)

    def _new_offset(self, tp: Any) -> int | None:
        """The offset to commit for ``tp``, from :attr:`processed`.

        faust's Cython stream iterator appends every acknowledged offset to this consumer's
        per-partition ``_acked`` list and ``_acked_index`` set, which only faust's own version
        of this method ever trimmed: they are emptied here, at every commit, or they would grow
        by one entry per event for as long as the worker runs.
        """
        self._acked.pop(tp, None)
        self._acked_index.pop(tp, None)
        return self.processed.committable(tp)


class _Producer(faust_aiokafka.Producer):
    async def flush(self) -> None:
        for hook in getattr(self.app, "before_flush", ()):
            await hook()
        await super().flush()


class _FlowControl(FlowControlEvent):
    """faust's flow control, which also empties the streams' queues whenever the flow resumes
    (and when partitions are revoked): what was handed over and not finished is read again."""

    def __init__(self, processed: ProcessedOffsets, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._processed = processed

    def clear(self) -> None:
        super().clear()
        self._processed.rewind()


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
    Producer = _Producer


class LowLatencyApp(faust.App):
    """A :class:`faust.App` on this transport: fetches wait at most ``fetch_max_wait_ms`` for
    ``fetch_min_bytes`` of new records, and every producer flush (faust flushes before it
    commits offsets, when partitions are revoked and when it stops) first awaits each of
    ``before_flush``, whose sends are then flushed with the rest. Otherwise unchanged."""

    def __init__(
        self, id: str, *, fetch_max_wait_ms: int = DEFAULT_FETCH_MAX_WAIT_MS,
        fetch_min_bytes: int = 1, **options: Any
    ) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.fetch_min_bytes = fetch_min_bytes
        self.processed = ProcessedOffsets()
        """What the agents finished: they call ``processed.finished(tp, offset)`` per record."""
        self.before_flush: list[Callable[[], Awaitable[Any]]] = []
        super().__init__(id, **options)

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        """faust's flow control, with the streams' queues' records read again when it empties
        them (see :class:`_FlowControl`)."""
        return _FlowControl(self.processed, loop=self.loop)

    def _new_transport(self) -> _Transport:
        return _Transport(self.conf.broker_consumer, self)
