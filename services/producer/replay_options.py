"""What a replay is asked to do (:class:`ReplayOptions`), what it did (:class:`ReplaySummary`),
and what it publishes through (:class:`Publisher`). Shared by the replay loops of
:mod:`services.producer.replay_stream` (publication time) and
:mod:`services.producer.replay_data_time` (the file's own times)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from schemas.events import Event, Label
from services.producer.replay import ReplayError, RowConverter


@dataclass(frozen=True)
class ReplayOptions:
    """How to replay. Label delay: ``label_delay_events`` (the label of the i-th event published
    goes right after event i+N; default 0) or ``label_delay_seconds``, not both. ``rate`` in
    events/s (``None``: as fast as possible). ``limit``: read at most that many rows. ``skip_bad``:
    count and report rows that cannot be converted instead of stopping at the first. Labels not
    yet due wait in memory: N of them, or those of the last S seconds of events.

    With a time column in the spec's ``[source]``, events keep the file's times and
    ``label_delay_seconds`` is in data time. ``speed`` then paces by those times: 1 at the
    data's pace, N N times faster; ``None`` (with no ``rate``) as fast as possible. ``speed``
    and ``rate`` exclude each other."""

    label_delay_events: int | None = None
    label_delay_seconds: float | None = None
    rate: float | None = None
    limit: int | None = None
    skip_bad: bool = False
    speed: float | None = None

    def __post_init__(self) -> None:
        if self.label_delay_events is not None and self.label_delay_seconds is not None:
            raise ValueError("give a label delay in events or in seconds, not both")
        if self.label_delay_events is not None and self.label_delay_events < 0:
            raise ValueError(f"label delay must be >= 0 events, got {self.label_delay_events}")
        seconds = self.label_delay_seconds
        if seconds is not None and not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"label delay must be >= 0 seconds, got {seconds}")
        if self.rate is not None and not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"rate must be a positive number of events/s, got {self.rate}")
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"limit must be >= 0 rows, got {self.limit}")
        if self.speed is not None and not (math.isfinite(self.speed) and self.speed > 0):
            raise ValueError(f"speed must be a positive factor, got {self.speed}")
        if self.speed is not None and self.rate is not None:
            raise ValueError("give a speed (data time) or a rate (events/s), not both")

    def check_against(self, converter: RowConverter) -> None:
        """Raise :class:`~services.producer.replay.ReplayError` for options the spec's source
        cannot honour: a speed without a time column, a label delay with a label time column."""
        if self.speed is not None and not converter.keeps_data_time:
            raise ReplayError("a speed paces by the data's own time, and the spec's [source] "
                              "has no time_column; pace by --rate instead")
        if converter.has_label_times and (self.label_delay_events is not None
                                          or self.label_delay_seconds is not None):
            raise ReplayError("the spec's [source] has a label_time_column, which says when each "
                              "label comes; drop the label delay option")


@dataclass(frozen=True)
class ReplaySummary:
    """What a replay read and put on the bus; ``data_seconds`` is the span of event time it
    covered when events kept the file's own times (``None`` otherwise)."""

    rows: int
    events: int
    labels: int
    bad_rows: int
    seconds: float
    stopped: bool
    data_seconds: float | None = None

    def describe(self, path: Path | str) -> str:
        """The final count line, e.g. ``replayed 10 events and 10 labels from x.csv in ...``."""
        rate = self.events / self.seconds if self.seconds > 0 else 0.0
        line = (f"replayed {self.events} events and {self.labels} labels from {path} "
                f"in {self.seconds:.1f}s ({rate:.0f} events/s)")
        if self.data_seconds is not None:
            line += f", {_span(self.data_seconds)} of data time"
        if self.bad_rows:
            line += f"; skipped {self.bad_rows} bad row{'s' if self.bad_rows != 1 else ''}"
        return f"stopped early: {line}" if self.stopped else line


class Publisher(Protocol):
    """What the loop needs of :class:`~services.producer.client.EventClient`."""

    events_published: int
    labels_published: int

    def publish_event(self, event: Event) -> Event: ...

    def publish_label(self, label: Label) -> Label: ...

    def flush(self, timeout: float = ...) -> None: ...


def _span(seconds: float) -> str:
    """``seconds`` in the largest unit that keeps it above 1: ``90 s``, ``2.5 h``, ``3.0 d``."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"
