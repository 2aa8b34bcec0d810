"""The ``dead-letters`` topic: the original bytes as the value, the story in the headers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from pydantic import Field

from schemas.base import Contract

HEADER_PREFIX = "streamml."

ReasonCode = Literal[
    "malformed_json",
    "schema_invalid",
    "spec_invalid",
    "oversized",
    "unknown_event",
    "late_label",
    "duplicate",
    "processing_error",
]
"""Bounded set of reasons: safe to use as a metric label."""


class DeadLetterHeaders(Contract):
    """Why a message could not be processed and where it came from.

    Carried as Kafka headers named ``streamml.<field>`` (UTF-8 values) next to the message's
    original, unchanged bytes, so it can be inspected and replayed.
    """

    schema_version: Literal[1] = 1
    source_topic: str
    source_partition: int = Field(ge=-1)
    source_offset: int = Field(ge=-1)
    service: str
    reason_code: ReasonCode
    error_class: str
    reason: str = Field(max_length=2000)

    def to_kafka_headers(self) -> list[tuple[str, bytes]]:
        """Encode as Kafka headers, one per field."""
        return [
            (HEADER_PREFIX + name, str(value).encode())
            for name, value in self.model_dump().items()
        ]

    @classmethod
    def from_kafka_headers(
        cls,
        headers: Mapping[str, str | bytes | None] | Iterable[tuple[str, str | bytes | None]],
    ) -> DeadLetterHeaders:
        """Decode the headers written by :meth:`to_kafka_headers`; other headers are ignored."""
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        fields: dict[str, str | int] = {
            name.removeprefix(HEADER_PREFIX): (
                value.decode(errors="replace") if isinstance(value, bytes) else value or ""
            )
            for name, value in pairs
            if name.startswith(HEADER_PREFIX)
        }
        for name in ("schema_version", "source_partition", "source_offset"):
            text = fields.get(name)
            if isinstance(text, str) and text.lstrip("-").isdigit():
                fields[name] = int(text)
        return cls.model_validate(fields)
