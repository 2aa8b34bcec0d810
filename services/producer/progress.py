"""A one-line progress display for long publishing runs, and notes printed above it.

The line is rewritten in place (carriage return) at most ``per_second`` times a second, and only
when ``show`` is true (by default: the stream is a terminal). Notes are always written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """Shows rows read, events, events/s and labels sent on ``stream``."""

    def __init__(
        self,
        stream: TextIO,
        show: bool,
        per_second: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._show = show
        self._interval = 1.0 / per_second
        self._clock = clock
        self._shown_at: float | None = None
        self._width = 0

    @classmethod
    def on_terminal(cls, stream: TextIO, quiet: bool = False) -> Progress:
        """A display on ``stream`` shown only if it is a terminal and not ``quiet``."""
        return cls(stream, show=not quiet and stream.isatty())

    def update(
        self, rows: int, events: int, labels: int, seconds: float, force: bool = False
    ) -> None:
        """Redraw the line (``seconds``: time since the run started) unless it was drawn less
        than an interval ago and not ``force``."""
        if not self._show:
            return
        now = self._clock()
        if not force and self._shown_at is not None and now - self._shown_at < self._interval:
            return
        self._shown_at = now
        rate = events / seconds if seconds > 0 else 0.0
        text = f"{rows} rows  {events} events  {rate:,.0f} events/s  {labels} labels"
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = len(text)

    def note(self, message: str) -> None:
        """Write ``message`` on a line of its own (above the progress line, which is redrawn)."""
        self._clear()
        self._stream.write(message + "\n")
        self._stream.flush()
        self._shown_at = None

    def close(self) -> None:
        """Erase the progress line, leaving the terminal as it was."""
        self._clear()
        self._stream.flush()

    def _clear(self) -> None:
        if self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._width = 0
