"""The three kinds of failure a processing step can report, and what every service does with each.

* :class:`Retriable`: the world is briefly unavailable (a broker restarting, a coordinator
  moving). The service backs off and tries the same message again; nothing is skipped.
* :class:`~services.common.dead_letters.DeadLetter`: the message in hand is bad input. It goes to
  ``dead-letters`` with its reason, is counted, and the service carries on with the next one.
* :class:`BrokenInvariant` (and any exception nobody expected): a bug, or state that contradicts
  itself. The service stops with one clear line naming the message it was on; it never turns a
  bug into a dead letter (that would be silent data loss) and never skips the message.
"""

from __future__ import annotations

from services.common.dead_letters import DeadLetter

__all__ = ["BrokenInvariant", "DeadLetter", "Retriable", "describe_crash"]


class Retriable(Exception):
    """Raised by a step whose message should be processed again after a back-off."""


class BrokenInvariant(RuntimeError):
    """Raised when the service's own state or contract is broken: it must stop, not go on."""


def describe_crash(error: BaseException, where: str) -> str:
    """The one line a service logs before it stops on ``error`` while processing ``where``."""
    kind = "broken invariant" if isinstance(error, BrokenInvariant) else "unexpected error"
    return f"stopping: {kind} while processing {where}: {type(error).__name__}: {error}"
