"""One record through an agent of the features worker, by failure kind (see
:mod:`services.common.failures`):

* the step returns: the record is finished;
* :class:`~services.common.failures.DeadLetter` (bad input): its dead letter is sent, then the
  record is finished (the commit that covers it waits for the dead letter's delivery);
* :class:`~services.common.failures.Retriable`: the same record is tried again after a back-off
  that doubles up to :data:`MAX_BACKOFF_SECONDS`; nothing behind it is processed meanwhile;
* anything else (a bug, a broken invariant): one line naming the record is logged and the worker
  is crashed. The record is not finished, so no commit goes past it: the next start reads it
  again. A bug never becomes a dead letter (that would be silent data loss).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from services.common.failures import DeadLetter, Retriable, describe_crash
from services.features.offsets import ProcessedOffsets

log = logging.getLogger(__name__)

FIRST_BACKOFF_SECONDS = 0.1
MAX_BACKOFF_SECONDS = 5.0

Work = Callable[[Any], Awaitable[None]]
"""The processing of one faust event."""
DeadLetterSink = Callable[[Any, DeadLetter], Awaitable[None]]
"""(faust event, the dead letter) -> sent."""
Crash = Callable[[BaseException], Awaitable[None]]


class RecordHandler:
    """Runs each record's work by the rules above; one per worker."""

    def __init__(
        self, processed: ProcessedOffsets, dead_letter: DeadLetterSink, crash: Crash,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._processed = processed
        self._dead_letter = dead_letter
        self._crash = crash
        self._sleep = sleep

    async def __call__(self, event: Any, work: Work) -> bool:
        """Process ``event`` (a faust event) with ``work``; False once the worker is crashing."""
        message = event.message
        backoff = FIRST_BACKOFF_SECONDS
        while True:
            try:
                await work(event)
            except DeadLetter as error:
                await self._dead_letter(event, error)
            except Retriable as error:
                log.warning("retrying %s[%d]@%d in %.1fs: %s", message.topic, message.partition,
                            message.offset, backoff, error)
                await self._sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            except Exception as error:
                where = f"{message.topic}[{message.partition}]@{message.offset}"
                log.critical(describe_crash(error, where), exc_info=error)
                await self._crash(error)
                return False
            self._processed.finished(message.tp, message.offset)
            return True
