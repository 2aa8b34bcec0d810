"""Batches that never wait to fill up: what a consumer has fetched, as soon as there is any.

``Consumer.consume(n, timeout)`` returns once it has ``n`` messages *or* the timeout passed: at
1,000 events/s a batch of 500 always waits out the timeout, which then adds itself to every
event's latency. :func:`consume_ready` returns what is already fetched (up to ``n``) at once,
and when nothing is, waits only for the first message and takes those fetched with it. Under
load batches are as large as the fetches; on a quiet stream a message is handed over as soon
as it arrives.
"""

from __future__ import annotations

from typing import Protocol

from confluent_kafka import Message


class BatchSource(Protocol):
    """The one call :func:`consume_ready` makes (a confluent-kafka ``Consumer`` has it)."""

    def consume(self, num_messages: int = 1, timeout: float = -1.0) -> list[Message]: ...


def consume_ready(consumer: BatchSource, num_messages: int, timeout: float) -> list[Message]:
    """Up to ``num_messages`` messages ``consumer`` has fetched, without waiting when there are
    some; otherwise the first within ``timeout`` seconds (negative: no limit) together with the
    others fetched by then. Empty when nothing came within ``timeout``."""
    batch = consumer.consume(num_messages, 0)
    if batch or timeout == 0:
        return batch
    batch = consumer.consume(1, timeout)
    if batch and num_messages > 1:
        batch.extend(consumer.consume(num_messages - 1, 0))
    return batch
