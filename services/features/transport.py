"""A faust transport for the features worker: faust's aiokafka transport with three changes.

* The consumer does not sit on new records for up to 1.5 s. faust's aiokafka driver fixes
  ``fetch_max_wait_ms=1500``; aiokafka keeps one fetch request in flight per broker, and a
  partition that just returned records is left out of that request, so new records on it wait
  until the request times out. A short wait keeps each hop at a few ms, at the cost of more
  (cheap, empty) fetches while the stream is idle.
* The consumer's loop that hands records to the streams verifies offset jumps before it commits
  past them and hands records over without four tasks each (:mod:`services.features.drain`).
* The producer runs the app's ``before_flush`` hooks before every flush.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from services.features.drain import drain_messages

DEFAULT_FETCH_MAX_WAIT_MS = 5


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = getattr(
            transport.app, "fetch_max_wait_ms", DEFAULT_FETCH_MAX_WAIT_MS
        )
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:
        await drain_messages(self, fetcher)


class _Producer(faust_aiokafka.Producer):
    async def flush(self) -> None:
        for hook in getattr(self.app, "before_flush", ()):
            await hook()
        await super().flush()


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
    Producer = _Producer


class LowLatencyApp(faust.App):
    """A :class:`faust.App` on this transport: fetches wait at most ``fetch_max_wait_ms`` for
    new records, and every producer flush (faust flushes before it commits offsets, when
    partitions are revoked and when it stops) first awaits each of ``before_flush``, whose
    sends are then flushed with the rest. Otherwise unchanged."""

    def __init__(
        self, id: str, *, fetch_max_wait_ms: int = DEFAULT_FETCH_MAX_WAIT_MS, **options: Any
    ) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.before_flush: list[Callable[[], Awaitable[Any]]] = []
        super().__init__(id, **options)

    def _new_transport(self) -> _Transport:
        return _Transport(self.conf.broker_consumer, self)
