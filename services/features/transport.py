"""A faust transport whose consumer does not sit on new records for up to 1.5 s nor spend four
tasks on each one, and whose producer runs the app's ``before_flush`` hooks before every flush.

faust's aiokafka driver fixes ``fetch_max_wait_ms=1500``. aiokafka keeps one fetch request in
flight per broker, and a partition that just returned records is left out of that request; new
records on it then wait until the request times out. With several partitions at a steady rate
that puts hundreds of milliseconds on every hop. A short wait keeps each hop at a few ms, at
the cost of more (cheap, empty) fetches while the stream is idle.

faust's fetch loop hands each record to the streams with
``wait_first(callback(record), suspend_flow.wait())``, so that a rebalance can interrupt a
delivery that waits for room in a full stream buffer. ``wait_first`` wraps both, and the
service's stop and crash events, in tasks: four tasks per record, a fifth of the worker's time.
While the flow is active, this consumer awaits the delivery directly. A delivery that then waits
for room cannot be interrupted, but a record delivered after a rebalance carries the old
generation and the stream skips it.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.services import WaitResults

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

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        """The fetch loop's ``wait_first(delivery, suspend_flow.wait())`` runs the delivery
        directly while the flow is active (see the module docstring); anything else, as faust."""
        if len(coros) == 2 and timeout is None and self._waits_for_suspension(coros[1]):
            delivery, suspension = coros
            if (inspect.iscoroutine(delivery) and not self.suspend_flow.is_set()
                    and self.app.flow_control.is_active()):
                suspension.close()
                return WaitResults([delivery], [await delivery], False)
        return await super().wait_first(*coros, timeout=timeout)

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        import logging
        logging.getLogger("DBG").warning("DBG gap %s %s..%s", tp, offset_from, offset_to)
        await super()._add_gap(tp, offset_from, offset_to)

    def _waits_for_suspension(self, awaitable: Any) -> bool:
        frame = getattr(awaitable, "cr_frame", None)
        return frame is not None and frame.f_locals.get("self") is self.suspend_flow


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
