"""A blocking client call with a deadline of our own, for calls that can outlive their timeout.

librdkafka's ``send_offsets_to_transaction`` can block forever, past the timeout it is given,
when the node coordinating the consumer group dies and leaves the cluster's metadata
(librdkafka issues #5456 and #5511, open in 2.16). A call blocked inside the C library cannot
be interrupted from Python, not even by a signal, so :func:`call_within` runs it on a daemon
thread and stops waiting at the deadline: the caller gets :class:`CallHung` and can fail
loudly (a service then exits and restarts from its last checkpoint) instead of hanging with a
healthy-looking process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class CallHung(RuntimeError):
    """A blocking call did not return within its deadline; it may still be running."""


def call_within(call: Callable[[], T], seconds: float, what: str) -> T:
    """Return ``call()``'s result, or raise its exception, if it ends within ``seconds``;
    otherwise raise :class:`CallHung` naming ``what``.

    The call runs on a daemon thread, which is abandoned if it hangs: the caller must not use
    the client again (its state is unknown) and should end the process.
    """
    done = threading.Event()
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as error:  # handed to the caller, re-raised there
            failure.append(error)
        finally:
            done.set()

    threading.Thread(target=run, name=f"blocking call: {what}", daemon=True).start()
    if not done.wait(seconds):
        raise CallHung(f"{what} did not return within {seconds:.0f}s")
    if failure:
        raise failure[0]
    return outcome[0]
