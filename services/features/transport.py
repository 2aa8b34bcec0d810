"""A faust transport whose consumer does not sit on new records for up to 1.5 s.

faust's aiokafka driver fixes ``fetch_max_wait_ms=1500``. aiokafka keeps one fetch request in
flight per broker, and a partition that just returned records is left out of that request; new
records on it then wait until the request times out. With several partitions at a steady rate
that puts hundreds of milliseconds on every hop. A short wait keeps each hop at a few ms, at
the cost of more (cheap, empty) fetches while the stream is idle.
"""

from __future__ import annotations

from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 20


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class LowLatencyApp(faust.App):
    """A :class:`faust.App` on the low-latency transport; otherwise unchanged."""

    def _new_transport(self) -> _Transport:
        return _Transport(self.conf.broker_consumer, self)
