"""Process runtime: logging, stop signals and the announcement a supervisor waits for."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

import orjson


class StopSignal:
    """Set by SIGTERM or SIGINT; loops check it between messages and then shut down cleanly."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def install(self) -> StopSignal:
        """Route SIGTERM and SIGINT to :meth:`set`. Call from the main thread."""
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("received %s, stopping", signal.Signals(signum).name)
        self._event.set()

    def set(self) -> None:
        """Ask the loop to stop after the message in hand."""
        self._event.set()

    @property
    def is_set(self) -> bool:
        """True once a stop was asked for."""
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, waking early on a stop; return whether stopped."""
        return self._event.wait(timeout)


def configure_logging(service: str, level: str) -> None:
    """One log format for every service: time, level, service, logger, message."""
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s",
        force=True,
    )


def announce_ready(service: str, metrics_port: int) -> None:
    """Print one JSON line on stdout that a supervisor or test can wait for."""
    line = orjson.dumps({"ready": service, "metrics_port": metrics_port})
    sys.stdout.write(line.decode() + "\n")
    sys.stdout.flush()


class StartupError(RuntimeError):
    """A service cannot start as configured; the message says why and what to do."""


def run_service(service: str, main: Callable[[], int]) -> int:
    """Run a service's ``main``; a bad setting, spec or unreachable broker is one clear line on
    stderr and exit code 2, not a traceback."""
    from pydantic import ValidationError

    from schemas.spec import SpecError
    from services.common.kafka import BrokerUnavailable

    try:
        return main()
    except (ValidationError, SpecError, BrokerUnavailable, StartupError) as error:
        sys.stderr.write(f"{service}: cannot start: {error}\n")
        return 2
