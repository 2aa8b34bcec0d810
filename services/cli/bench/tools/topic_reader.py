"""Reading one topic's contracts back in a benchmark script: a fresh consumer group,
``read_committed``, from the earliest offset, until the caller has what it waits for."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from schemas.codec import ContractT, decode
from services.common.kafka import make_consumer
from services.common.settings import KafkaSettings


def read_topic(kafka: KafkaSettings, topic: str, contract: type[ContractT],
               take: Callable[[float, ContractT], None], done: Callable[[], bool],
               timeout: float, *, group: str, poll_seconds: float = 0.2,
               idle: Callable[[], None] | None = None, assigned: threading.Event | None = None,
               config: dict[str, Any] | None = None) -> None:
    """Hand each message of ``topic``, decoded as ``contract``, to ``take`` with the wall time
    it was read, until ``done()`` or ``timeout`` seconds have passed.

    The consumer's group is ``<group>-<random>``; ``config`` overrides its settings. ``idle``
    is called whenever a poll of ``poll_seconds`` brings nothing (or an error); ``assigned`` is
    set once the consumer has its partitions.
    """
    consumer = make_consumer(kafka, f"{group}-{uuid.uuid4().hex[:8]}", **(config or {}))
    if assigned is None:
        consumer.subscribe([topic])
    else:
        consumer.subscribe([topic], on_assign=lambda consumer, partitions: assigned.set())
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not done():
            message = consumer.poll(poll_seconds)
            if message is None or message.error() is not None:
                if idle is not None:
                    idle()
                continue
            take(time.time(), decode(contract, message.value()))
    finally:
        consumer.close()
