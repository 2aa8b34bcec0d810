"""The consume -> process -> commit contract of the shared ``ConsumerLoop``.

:class:`ConsumerLoopContract` is written against a :class:`LoopBackend`, so the same checks run
against the in-memory clients (``tests/unit/test_consumer_loop_contract.py``) and the real broker
(``tests/integration/test_consumer_loop_contract.py``). Checks that need a broker to misbehave
(deliveries held back or failing, commits refused, a full producer queue) ask the backend for
:class:`Faults`; a backend that cannot inject them skips those checks.

Every run stops after a number of messages or at a deadline (never a sleep): a run that misses
its messages fails its assertions instead of hanging.
"""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import pytest
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition
from prometheus_client import CollectorRegistry

from schemas.dead_letters import DeadLetterHeaders
from services.common.committers import DeliveryReports, OffsetCommitter
from services.common.consumer_loop import Committer, ConsumerLoop
from services.common.dead_letters import DeadLetter, DeadLetterPublisher
from services.common.failures import Backoff, Retriable, UndeliveredOutput
from services.common.runtime import StopSignal
from services.common.service_metrics import LoopMetrics

Action = Literal["ok", "retry", "dead", "crash"]
DEADLINE_SECONDS = 60.0
"""How long a run waits for its messages before it gives up (the test then fails)."""


class Faults(Protocol):
    """Ways to make the broker misbehave for the clients of one run."""

    def hold_deliveries(self) -> None: ...

    def fail_deliveries(self) -> None: ...

    def fail_next_commits(self, *codes: int) -> None: ...

    def fill_queue(self) -> None: ...

    def free_queue(self) -> None: ...


@dataclass
class Clients:
    """A consumer and a producer for one run; the producer reports deliveries to ``deliveries``."""

    consumer: Any
    producer: Any
    deliveries: DeliveryReports


class LoopBackend(ABC):
    """Topics, clients and committed offsets of one broker (fake or real)."""

    @abstractmethod
    def topic(self) -> str:
        """A new topic of one partition that no other test uses."""

    @abstractmethod
    def publish(self, topic: str, values: list[bytes]) -> None:
        """Append ``values`` to ``topic`` and wait until they are there."""

    @abstractmethod
    def clients(self, group: str) -> Clients:
        """A fresh consumer of ``group`` and a fresh producer."""

    @abstractmethod
    def committed(self, group: str, topic: str) -> int | None:
        """The offset ``group`` committed on ``topic``'s partition 0, or None."""

    @abstractmethod
    def read(self, topic: str, count: int) -> list[tuple[bytes | None, DeadLetterHeaders | None]]:
        """The first ``count`` records of ``topic`` (fewer at a deadline): value and, when
        present, dead-letter headers."""

    def faults(self, clients: Clients) -> Faults:
        """Fault injection for ``clients``; skips the test where the backend has none."""
        pytest.skip("this backend cannot inject faults")


@dataclass
class ScriptedHandler:
    """Does what ``script`` says for each offset, call by call (``ok`` once the script for it is
    used up); ``ok`` produces the value to ``output``. Records every offset it is called with."""

    producer: Any
    output: str
    script: dict[int, list[Action]] = field(default_factory=dict)
    seen: list[int] = field(default_factory=list)
    deadline: float = field(default_factory=lambda: time.monotonic() + DEADLINE_SECONDS)
    stop: StopSignal | None = None

    def handle(self, message: Message) -> None:
        offset = message.offset() or 0
        self.seen.append(offset)
        steps = self.script.get(offset, [])
        action = steps.pop(0) if steps else "ok"
        if action == "retry":
            raise Retriable(f"offset {offset} not yet")
        if action == "dead":
            raise DeadLetter("schema_invalid", f"offset {offset} is bad input")
        if action == "crash":
            raise RuntimeError(f"a bug at offset {offset}")
        self.producer.produce(self.output, value=message.value())

    def on_idle(self) -> None:
        if time.monotonic() > self.deadline and self.stop is not None:
            self.stop.set()  # the run missed its messages: its assertions fail


class ProcessedCommitter:
    """Commits the offsets after the messages it heard were processed, tracked explicitly (not
    the consumer's positions, which run ahead of a batch), as the model's transactional
    checkpointer does."""

    def __init__(self, consumer: Any) -> None:
        self._consumer = consumer
        self._next: dict[tuple[str, int], int] = {}

    def processed(self, message: Message) -> None:
        self._next[(message.topic() or "", message.partition() or 0)] = (message.offset() or 0) + 1

    def due(self) -> bool:
        return True

    def commit(self) -> None:
        if not self._next:
            return
        offsets = [TopicPartition(topic, partition, offset)
                   for (topic, partition), offset in self._next.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:
            if error.args[0].code() != KafkaError._NO_OFFSET:
                raise


CommitterKind = Literal["offsets", "processed"]


class ConsumerLoopContract(ABC):
    """The loop's rules, for any :class:`LoopBackend` (a subclass provides ``backend``)."""

    @pytest.fixture
    @abstractmethod
    def backend(self) -> Iterator[LoopBackend]:
        """The broker the contract runs against."""

    @pytest.fixture
    def topic(self, backend: LoopBackend) -> str:
        return backend.topic()

    @pytest.fixture
    def group(self) -> str:
        return f"contract-{uuid.uuid4().hex[:8]}"

    # -- running the loop ------------------------------------------------------------------

    @staticmethod
    def run(
        clients: Clients, topic: str, handler: ScriptedHandler, *, max_messages: int,
        committer: CommitterKind = "offsets", sleep: Callable[[float], bool] | None = None,
        backoff: Backoff | None = None, monotonic: Callable[[], float] = time.monotonic,
        registry: CollectorRegistry | None = None,
    ) -> int:
        """Run a loop over ``topic`` that commits after every message; return its count."""
        stop = StopSignal()
        handler.stop = stop
        chosen: Committer = (
            ProcessedCommitter(clients.consumer) if committer == "processed" else
            OffsetCommitter(clients.consumer, clients.producer, interval=0.0,
                            deliveries=clients.deliveries, flush_timeout=5.0)
        )
        loop = ConsumerLoop(
            clients.consumer, clients.producer, handler,
            DeadLetterPublisher(clients.producer, f"{topic}.dead-letters", "contract"), stop,
            LoopMetrics(registry or CollectorRegistry(), "contract"), base_name_of=str,
            committer=chosen, poll_timeout=0.2, backoff=backoff,
            sleep=sleep or (lambda seconds: stop.is_set), monotonic=monotonic,
        )
        loop.subscribe([topic])
        return loop.run(max_messages=max_messages)

    @staticmethod
    def handler(clients: Clients, topic: str, **script: list[Action]) -> ScriptedHandler:
        """A handler producing to ``<topic>.out``; ``script`` keys are ``at<offset>``."""
        steps = {int(name.removeprefix("at")): list(actions) for name, actions in script.items()}
        return ScriptedHandler(clients.producer, f"{topic}.out", steps)

    # -- the rules ---------------------------------------------------------------------------

    def test_offsets_move_only_past_messages_whose_handler_returned(
        self, backend: LoopBackend, topic: str, group: str,
    ) -> None:
        backend.publish(topic, [b"m0", b"m1", b"m2"])
        clients = backend.clients(group)
        handler = self.handler(clients, topic, at2=["crash"])
        with pytest.raises(RuntimeError, match="a bug at offset 2"):
            self.run(clients, topic, handler, max_messages=3)
        assert handler.seen == [0, 1, 2]
        assert backend.committed(group, topic) == 2

        again = backend.clients(group)
        rerun = self.handler(again, topic)
        assert self.run(again, topic, rerun, max_messages=1) == 1
        assert rerun.seen == [2]
        assert backend.committed(group, topic) == 3

    @pytest.mark.parametrize("committer", ["offsets", "processed"])
    def test_a_crash_commits_nothing_more_not_even_when_closing_revokes(
        self, backend: LoopBackend, topic: str, group: str, committer: CommitterKind,
    ) -> None:
        backend.publish(topic, [b"m0", b"m1", b"m2"])
        clients = backend.clients(group)
        handler = self.handler(clients, topic, at1=["crash"])
        with pytest.raises(RuntimeError):
            self.run(clients, topic, handler, max_messages=3, committer=committer)
        assert backend.committed(group, topic) == 1

    def test_a_retriable_failure_is_retried_on_the_same_message_with_growing_waits(
        self, backend: LoopBackend, topic: str, group: str,
    ) -> None:
        backend.publish(topic, [b"m0", b"m1", b"m2"])
        clients = backend.clients(group)
        handler = self.handler(clients, topic, at1=["retry", "retry", "retry"])
        waits: list[float] = []

        def recording(seconds: float) -> bool:
            waits.append(seconds)
            return False

        processed = self.run(clients, topic, handler, max_messages=3,
                             backoff=Backoff(first=0.5, factor=2.0, longest=1.5), sleep=recording)
        assert processed == 3
        assert handler.seen == [0, 1, 1, 1, 1, 2]
        assert waits == [0.5, 1.0, 1.5]
        assert backend.committed(group, topic) == 3
        assert [value for value, _ in backend.read(f"{topic}.out", 3)] == [b"m0", b"m1", b"m2"]

    @pytest.mark.parametrize("committer", ["offsets", "processed"])
    def test_a_stop_while_retrying_leaves_the_message_for_the_next_run(
        self, backend: LoopBackend, topic: str, group: str, committer: CommitterKind,
    ) -> None:
        backend.publish(topic, [b"m0", b"m1", b"m2"])
        clients = backend.clients(group)
        handler = self.handler(clients, topic, at1=["retry"] * 10)
        waits: list[float] = []

        def stop_at_second_wait(seconds: float) -> bool:
            waits.append(seconds)
            return len(waits) == 2

        assert self.run(clients, topic, handler, max_messages=3, committer=committer,
                        sleep=stop_at_second_wait) == 1
        assert handler.seen == [0, 1, 1]
        assert backend.committed(group, topic) == 1

        again = backend.clients(group)
        rerun = self.handler(again, topic)
        self.run(again, topic, rerun, max_messages=2)
        assert rerun.seen == [1, 2]

    def test_a_retriable_failure_that_outlasts_the_backoff_stops_the_loop_uncommitted(
        self, backend: LoopBackend, topic: str, group: str,
    ) -> None:
        backend.publish(topic, [b"m0", b"m1"])
        clients = backend.clients(group)
        handler = self.handler(clients, topic, at1=["retry"] * 100)
        now = [0.0]

        def waiting(seconds: float) -> bool:
            now[0] += seconds
            return False

        with pytest.raises(Retriable):
            self.run(clients, topic, handler, max_messages=2, sleep=waiting,
                     backoff=Backoff(first=1.0, longest=4.0, give_up_after=10.0),
                     monotonic=lambda: now[0])
        assert handler.seen[:2] == [0, 1]
        assert len(handler.seen) == 6  # waits 1, 2, 4, 4: ten seconds after the first failure
        assert backend.committed(group, topic) == 1

    def test_bad_input_is_dead_lettered_with_its_reason_counted_and_committed(
        self, backend: LoopBackend, topic: str, group: str,
    ) -> None:
        backend.publish(topic, [b"bad", b"good"])
        clients = backend.clients(group)
        handler = self.handler(clients, topic, at0=["dead"])
        registry = CollectorRegistry()
        assert self.run(clients, topic, handler, max_messages=2, registry=registry) == 2
        assert backend.committed(group, topic) == 2
        [(value, headers)] = backend.read(f"{topic}.dead-letters", 1)
        assert value == b"bad"
        assert headers is not None
        assert (headers.source_topic, headers.source_offset) == (topic, 0)
        assert (headers.reason_code, headers.reason) == ("schema_invalid", "offset 0 is bad input")
        assert registry.get_sample_value(
            "streamml_dead_letters_published_total",
            {"service": "contract", "reason": "schema_invalid"},
        ) == 1.0

    # -- rules that need faults --------------------------------------------------------------

    def test_no_commit_while_the_producer_cannot_flush(
        self, backend: LoopBackend, topic: str, group: str,
    ) -> None:
        backend.publish(topic, [b"m0", b"m1"])
        clients = backend.clients(group)
        backend.faults(clients).hold_deliveries()
        assert self.run(clients, topic, self.handler(clients, topic), max_messages=2) == 2
        assert backend.committed(group, topic) is None

        again = backend.clients(group)
        rerun = self.handler(again, topic)
        self.run(again, topic, rerun, max_messages=2)
        assert rerun.seen == [0, 1]
        assert backend.committed(group, topic) == 2

    def test_a_failed_delivery_stops_the_loop_uncommitted(
        self, backend: LoopBackend, topic: str, group: str,
    ) -> None:
        backend.publish(topic, [b"m0", b"m1"])
        clients = backend.clients(group)
        backend.faults(clients).fail_deliveries()
        with pytest.raises(UndeliveredOutput, match="not delivered"):
            self.run(clients, topic, self.handler(clients, topic), max_messages=2)
        assert backend.committed(group, topic) is None

    def test_a_dead_lettered_message_is_committed_only_after_its_dead_letter_is_acknowledged(
        self, backend: LoopBackend, topic: str, group: str,
    ) -> None:
        backend.publish(topic, [b"bad"])
        held = backend.clients(group)
        backend.faults(held).hold_deliveries()
        self.run(held, topic, self.handler(held, topic, at0=["dead"]), max_messages=1)
        assert backend.committed(group, topic) is None

        failing = backend.clients(group)
        backend.faults(failing).fail_deliveries()
        with pytest.raises(UndeliveredOutput):
            self.run(failing, topic, self.handler(failing, topic, at0=["dead"]), max_messages=1)
        assert backend.committed(group, topic) is None
        assert backend.read(f"{topic}.dead-letters", 1) == []

        acknowledged = backend.clients(group)
        self.run(acknowledged, topic, self.handler(acknowledged, topic, at0=["dead"]),
                 max_messages=1)
        assert backend.committed(group, topic) == 1
        assert [value for value, _ in backend.read(f"{topic}.dead-letters", 1)] == [b"bad"]

    def test_a_dead_letter_the_producer_cannot_queue_is_retried_not_skipped(
        self, backend: LoopBackend, topic: str, group: str,
    ) -> None:
        backend.publish(topic, [b"bad", b"good"])
        clients = backend.clients(group)
        faults = backend.faults(clients)
        faults.fill_queue()
        handler = self.handler(clients, topic, at0=["dead"])

        def free_after_wait(seconds: float) -> bool:
            faults.free_queue()
            return False

        assert self.run(clients, topic, handler, max_messages=2, sleep=free_after_wait) == 2
        assert handler.seen == [0, 1]  # the handler is not run again for a dead letter
        assert [value for value, _ in backend.read(f"{topic}.dead-letters", 1)] == [b"bad"]
        assert backend.committed(group, topic) == 2

    def test_commit_later_errors_leave_offsets_stored_for_the_next_commit(
        self, backend: LoopBackend, topic: str, group: str,
    ) -> None:
        backend.publish(topic, [b"m0", b"m1", b"m2"])
        clients = backend.clients(group)
        backend.faults(clients).fail_next_commits(
            KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.REQUEST_TIMED_OUT)
        assert self.run(clients, topic, self.handler(clients, topic), max_messages=3) == 3
        assert backend.committed(group, topic) == 3

    def test_any_other_commit_error_stops_the_loop(
        self, backend: LoopBackend, topic: str, group: str,
    ) -> None:
        backend.publish(topic, [b"m0"])
        clients = backend.clients(group)
        backend.faults(clients).fail_next_commits(KafkaError.GROUP_AUTHORIZATION_FAILED)
        with pytest.raises(KafkaException):
            self.run(clients, topic, self.handler(clients, topic), max_messages=1)
        assert backend.committed(group, topic) is None
