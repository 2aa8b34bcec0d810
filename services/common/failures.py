"""The three kinds of failure a processing step can report, and what every service does with each.

* :class:`Retriable`: the world is briefly unavailable (a broker restarting, a coordinator
  moving, the producer's queue full). The service backs off (:class:`Backoff`) and tries the
  same message again; nothing is skipped. A step raises it only before it changed any state or
  produced anything for the message, or makes its retry idempotent.
* :class:`~services.common.dead_letters.DeadLetter`: the message in hand is bad input. It goes to
  ``dead-letters`` with its reason, is counted, and the service carries on with the next one.
* :class:`BrokenInvariant` (and any exception nobody expected): a bug, or state that contradicts
  itself. The service stops with one clear line naming the message it was on
  (:func:`describe_crash`); it never turns a bug into a dead letter (that would be silent data
  loss) and never commits the message.

:class:`UndeliveredOutput` is the producer giving up on a record already handed to it: the work
that produced it is lost unless its input is read again, so the service stops uncommitted too.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException

from services.common.dead_letters import DeadLetter

__all__ = [
    "Backoff", "BrokenInvariant", "DeadLetter", "Retriable", "UndeliveredOutput", "describe_crash",
]


class Retriable(Exception):
    """Raised by a step whose message should be processed again after a back-off."""


class BrokenInvariant(RuntimeError):
    """Raised when the service's own state or contract is broken: it must stop, not go on."""


class UndeliveredOutput(RuntimeError):
    """A produced record's delivery failed for good (the producer's own retries ran out)."""


@dataclass(frozen=True)
class Backoff:
    """Bounded exponential back-off: ``first``, then ``factor`` times longer, at most ``longest``
    seconds per wait; after ``give_up_after`` seconds of failing, the failure is a crash.

    ``give_up_after`` stays below the consumer's ``max.poll.interval.ms`` (300 s by default), so
    a member retrying one message never silently drops out of its group.
    """

    first: float = 0.05
    factor: float = 2.0
    longest: float = 5.0
    give_up_after: float = 240.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first retry)."""
        return float(min(self.longest, self.first * self.factor ** min(attempt, 64)))


FENCED_CODES = frozenset({KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                          KafkaError.INVALID_PRODUCER_EPOCH})
"""A transactional producer fenced by a newer one with the same ``transactional.id``."""


def describe_crash(error: BaseException, where: str) -> str:
    """The one line a service logs before it stops on ``error`` while processing ``where``."""
    if isinstance(error, KafkaException) and error.args and getattr(
            error.args[0], "code", lambda: None)() in FENCED_CODES:
        return (f"stopping: fenced while processing {where}: another process started with this "
                "one's transactional id (two model or drift services of one deployment, or two "
                "predictor replicas with one STREAMML_PREDICTOR__REPLICA); run one learner per "
                f"deployment and scale with predictor replicas: {error}")
    if isinstance(error, BrokenInvariant):
        kind = "broken invariant"
    elif isinstance(error, Retriable):
        kind = "retriable error that did not clear"
    elif isinstance(error, UndeliveredOutput):
        kind = "undelivered output"
    else:
        kind = "unexpected error"
    return f"stopping: {kind} while processing {where}: {type(error).__name__}: {error}"
