"""Dead-letter publishing: the original bytes, plus headers that say where and why."""

from __future__ import annotations

import logging
from typing import Protocol

from schemas.codec import ContractError
from schemas.dead_letters import DeadLetterHeaders, ReasonCode

log = logging.getLogger(__name__)


class Sink(Protocol):
    """The part of a Kafka producer a dead-letter publisher needs."""

    def produce(
        self,
        topic: str,
        *,
        value: bytes | None = ...,
        key: bytes | None = ...,
        headers: list[tuple[str, str | bytes | None]] | None = ...,
    ) -> None: ...


class DeadLetter(Exception):
    """Raised by a processing step to send the message in hand to ``dead-letters``.

    The loop catches it, publishes the original message with ``reason_code`` and ``reason`` and
    carries on with the next message.
    """

    def __init__(self, reason_code: ReasonCode, reason: str) -> None:
        super().__init__(reason)
        self.reason_code: ReasonCode = reason_code
        self.reason = reason

    @classmethod
    def from_contract_error(cls, error: ContractError) -> DeadLetter:
        """Wrap a decoding failure, keeping its reason code."""
        code: ReasonCode = "malformed_json" if error.reason_code == "malformed_json" else (
            "schema_invalid"
        )
        dead = cls(code, error.reason)
        dead.__cause__ = error
        return dead


class DeadLetterPublisher:
    """Publishes unprocessable messages to the dead-letter topic of one service."""

    def __init__(self, producer: Sink, topic: str, service: str) -> None:
        self._producer = producer
        self._topic = topic
        self._service = service

    @property
    def service(self) -> str:
        """The service whose dead letters these are."""
        return self._service

    def publish(
        self,
        value: bytes | None,
        key: bytes | None,
        source_topic: str,
        source_partition: int,
        source_offset: int,
        error: DeadLetter,
    ) -> DeadLetterHeaders:
        """Send ``value`` unchanged with headers naming its origin and ``error``; return them."""
        cause = error.__cause__ if error.__cause__ is not None else error
        headers = DeadLetterHeaders(
            source_topic=source_topic,
            source_partition=source_partition,
            source_offset=source_offset,
            service=self._service,
            reason_code=error.reason_code,
            error_class=type(cause).__name__,
            reason=error.reason[:2000],
        )
        wire_headers: list[tuple[str, str | bytes | None]] = list(headers.to_kafka_headers())
        self._producer.produce(self._topic, value=value, key=key, headers=wire_headers)
        log.warning(
            "dead-lettered %s[%d]@%d: %s (%s)",
            source_topic, source_partition, source_offset, error.reason_code, error.reason[:200],
        )
        return headers
