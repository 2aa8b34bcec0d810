"""consume_ready: a batch is what is fetched, never a wait for a full batch."""

from __future__ import annotations

from typing import Any

from services.common.batches import consume_ready


class _Fetched:
    """A consumer holding ``queued`` messages now and ``arriving`` ones after a wait."""

    def __init__(self, queued: list[str], arriving: list[str]) -> None:
        self.queued, self.arriving = queued, arriving
        self.calls: list[tuple[int, float]] = []

    def consume(self, num_messages: int = 1, timeout: float = -1.0) -> list[Any]:
        self.calls.append((num_messages, timeout))
        if not self.queued and timeout != 0:
            self.queued, self.arriving = self.arriving, []
        taken, self.queued = self.queued[:num_messages], self.queued[num_messages:]
        return taken


def test_what_is_fetched_is_returned_without_waiting() -> None:
    consumer = _Fetched(["a", "b", "c"], arriving=["late"])
    assert list[object](consume_ready(consumer, 500, 0.1)) == ["a", "b", "c"]
    assert consumer.calls == [(500, 0)], "no wait for the batch to fill"


def test_a_batch_is_capped_at_its_size() -> None:
    consumer = _Fetched(["a", "b", "c"], arriving=[])
    assert list[object](consume_ready(consumer, 2, 0.1)) == ["a", "b"]


def test_with_nothing_fetched_it_waits_for_the_first_and_takes_the_rest_fetched_with_it() -> None:
    consumer = _Fetched([], arriving=["x", "y", "z"])
    assert list[object](consume_ready(consumer, 500, 0.1)) == ["x", "y", "z"]
    assert consumer.calls == [(500, 0), (1, 0.1), (499, 0)]


def test_nothing_within_the_timeout_is_an_empty_batch() -> None:
    consumer = _Fetched([], arriving=[])
    assert consume_ready(consumer, 500, 0.1) == []
    assert consume_ready(consumer, 500, 0) == []
    assert consumer.calls == [(500, 0), (1, 0.1), (500, 0)]
