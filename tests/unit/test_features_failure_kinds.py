"""The features worker by failure kind: bad input is dead-lettered, a retriable error is retried on
the same record, a bug stops the worker without committing past the record."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from services.common.failures import BrokenInvariant, DeadLetter, Retriable
from services.features.handling import MAX_BACKOFF_SECONDS, RecordHandler
from services.features.offsets import ProcessedOffsets


@dataclass
class _Message:
    offset: int
    topic: str = "events"
    partition: int = 0

    @property
    def tp(self) -> tuple[str, int]:
        return (self.topic, self.partition)


@dataclass
class _Event:
    message: _Message


@dataclass
class _Worker:
    """What a record handler talks to: offsets, dead letters, the crash, the clock."""

    offsets: ProcessedOffsets = field(default_factory=ProcessedOffsets)
    dead_letters: list[tuple[int, str]] = field(default_factory=list)
    crashes: list[BaseException] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.offsets.reset(("events", 0), 0)

    async def dead_letter(self, event: Any, error: DeadLetter) -> None:
        self.dead_letters.append((event.message.offset, error.reason_code))

    async def crash(self, error: BaseException) -> None:
        self.crashes.append(error)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def handler(self) -> RecordHandler:
        return RecordHandler(self.offsets, self.dead_letter, self.crash, self.sleep)

    def run(self, offset: int, work: Any) -> bool:
        self.offsets.handed_over(("events", 0), offset)
        result: bool = asyncio.run(self.handler()(_Event(_Message(offset)), work))
        return result


async def _fine(event: Any) -> None:
    return None


def test_a_processed_record_can_be_committed() -> None:
    worker = _Worker()
    assert worker.run(0, _fine)
    assert worker.offsets.committable(("events", 0)) == 1


def test_bad_input_is_dead_lettered_with_its_reason_and_committed_after_it() -> None:
    async def invalid(event: Any) -> None:
        raise DeadLetter("spec_invalid", "field 'hour': 25 is above 23")

    worker = _Worker()
    assert worker.run(0, invalid)
    assert worker.dead_letters == [(0, "spec_invalid")]
    assert worker.crashes == []
    assert worker.offsets.committable(("events", 0)) == 1


def test_a_retriable_error_retries_the_same_record_with_a_growing_back_off() -> None:
    attempts: list[int] = []

    async def flaky(event: Any) -> None:
        attempts.append(event.message.offset)
        if len(attempts) < 8:
            raise Retriable("producer queue full")

    worker = _Worker()
    assert worker.run(0, flaky)
    assert attempts == [0] * 8
    assert worker.sleeps == sorted(worker.sleeps)
    assert worker.sleeps[-1] == MAX_BACKOFF_SECONDS
    assert worker.dead_letters == []
    assert worker.offsets.committable(("events", 0)) == 1


@pytest.mark.parametrize("bug", [KeyError("state"), BrokenInvariant("state behind its marks")])
def test_a_bug_stops_the_worker_and_is_never_committed_nor_dead_lettered(
    bug: Exception, caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(event: Any) -> None:
        raise bug

    worker = _Worker()
    assert not worker.run(0, broken)
    assert worker.crashes == [bug]
    assert worker.dead_letters == []
    assert worker.offsets.committable(("events", 0)) == 0  # read again on the next start
    stops = [record.getMessage() for record in caplog.records if "stopping" in record.getMessage()]
    assert len(stops) == 1
    assert "events[0]@0" in stops[0]
