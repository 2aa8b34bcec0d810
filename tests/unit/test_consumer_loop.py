"""The consumer loop with in-memory clients: it marks each turn, so a stuck loop can be seen."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from services.common.consumer_loop import ConsumerLoop
from services.common.dead_letters import DeadLetterPublisher
from services.common.runtime import StopSignal
from services.common.service_metrics import LoopMetrics
from tests.unit.fakes import FakeProducer


class _IdleConsumer:
    """Returns nothing on every consume; records the turn time at each consume that may wait
    (a turn first takes what is fetched without waiting); sets ``stop`` at the ``polls``-th."""

    def __init__(self, stop: StopSignal, polls: int) -> None:
        self.stop, self.polls, self.turns_seen = stop, polls, list[float]()
        self.loop: ConsumerLoop | None = None

    def consume(self, num_messages: int, timeout: float) -> list[object]:
        assert self.loop is not None
        if timeout == 0:
            return []
        self.turns_seen.append(self.loop.last_turn)
        if len(self.turns_seen) == self.polls:
            self.stop.set()
        return []

    def close(self) -> None: ...


class _NoCommits:
    def processed(self, message: object) -> None: ...

    def due(self) -> bool:
        return False

    def commit(self) -> None: ...


class _Quiet:
    def handle(self, message: object) -> None: ...

    def on_idle(self) -> None: ...


class _Producer(FakeProducer):
    def poll(self, timeout: float) -> int:
        return 0


def test_every_turn_of_the_loop_is_marked_before_it_polls() -> None:
    stop, ticks = StopSignal(), iter(range(100))
    consumer, producer = _IdleConsumer(stop, polls=3), _Producer()
    loop = ConsumerLoop(
        consumer, producer, _Quiet(),  # type: ignore[arg-type]
        DeadLetterPublisher(producer, "dead-letters", "svc"), stop,
        LoopMetrics(CollectorRegistry(), "svc"), base_name_of=str, committer=_NoCommits(),
        monotonic=lambda: float(next(ticks)),
    )
    consumer.loop = loop
    assert loop.last_turn == 0.0  # created
    loop.run()
    assert consumer.turns_seen == [1.0, 2.0, 3.0]
