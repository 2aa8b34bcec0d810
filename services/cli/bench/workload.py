"""The benchmark's stream: endless rows of one spec, and their wire form.

A file with the spec's ``[source]`` section (``data/elec2.csv`` for ``elec2``) is read once and
cycled; the ``clicks`` spec uses the built-in click scenario with every label sent (clicks and
non-clicks), so the model learns from labels rather than from closed windows, as River does in
process. Event and label times are given when a row is published (or, in process, on a fixed
schedule), so the same rows can be streamed at any rate.

>>> from datetime import UTC, datetime
>>> row = Row({"market": "nsw"}, {"period": 0.5}, 1)
>>> event_bytes("b1.0.7", datetime(2026, 1, 1, tzinfo=UTC), row)[:60]
b'{"schema_version":1,"event_id":"b1.0.7","event_time":"2026-0'
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import orjson

from schemas.events import FieldValue, LabelValue
from schemas.spec import PipelineSpec
from services.producer.replay import BadRow, RowConverter, read_rows
from services.producer.scenarios.clicks import ClicksScenario


@dataclass(frozen=True)
class Row:
    """One event's entity keys and raw fields, and the label reality will send for it."""

    entity: dict[str, str]
    fields: dict[str, FieldValue]
    label: LabelValue


class Workload(Protocol):
    """An endless, deterministic stream of rows for ``spec``."""

    spec: PipelineSpec
    description: str

    def rows(self) -> Iterator[Row]: ...


class FileWorkload:
    """The rows of a CSV or JSONL file (``[source]`` of the spec), cycled without end.

    Rows that cannot be converted raise :class:`~services.producer.replay.BadRow`.
    """

    def __init__(self, spec: PipelineSpec, path: Path, limit: int | None = None) -> None:
        self.spec = spec
        converter = RowConverter(spec, str(path))
        when = datetime(2026, 1, 1, tzinfo=UTC)
        self._rows: list[Row] = []
        for source_row in read_rows(path, converter.required_columns()):
            if limit is not None and len(self._rows) >= limit:
                break
            event, label = converter.convert(source_row, when)
            self._rows.append(Row(dict(event.entity), dict(event.fields), label))
        if not self._rows:
            raise BadRow(str(path), 1, "no rows to stream")
        self.description = f"{path} ({len(self._rows)} rows, cycled)"

    @property
    def size(self) -> int:
        """Distinct rows before the stream repeats."""
        return len(self._rows)

    def rows(self) -> Iterator[Row]:
        return itertools.cycle(self._rows)


class ClicksWorkload:
    """The click scenario (``services.producer.scenarios.clicks``), every label sent."""

    def __init__(self, spec: PipelineSpec, seed: int = 7) -> None:
        self.spec = spec
        self._seed = seed
        self.description = f"click scenario, seed {seed}, every label sent"

    def rows(self) -> Iterator[Row]:
        scenario = ClicksScenario(seed=self._seed, explicit_negatives=True)
        start = datetime(2026, 1, 1, 12, tzinfo=UTC)
        for labelled in scenario.events(start, 0.001):
            event = labelled.event
            yield Row(dict(event.entity), dict(event.fields), labelled.label)


def workload_for(spec: PipelineSpec, data: Path | None) -> Workload:
    """The stream for ``spec``: ``data`` when given, the click scenario for ``clicks``, else
    ``data/<spec name>.csv``. ValueError when there is none."""
    if data is not None:
        return FileWorkload(spec, data)
    if spec.name == "clicks":
        return ClicksWorkload(spec)
    default = Path("data") / f"{spec.name}.csv"
    if spec.source is not None and default.is_file():
        return FileWorkload(spec, default)
    raise ValueError(f"no stream for spec '{spec.name}': give --data FILE (a CSV or JSONL file "
                     "its [source] section describes)")


def event_id(run: str, window: int, index: int) -> str:
    """The id of event ``index`` of measurement window ``window`` of run ``run``."""
    return f"b{run}.{window}.{index}"


def window_prefix(run: str, window: int) -> str:
    """What every event id of that window starts with."""
    return f"b{run}.{window}."


def event_bytes(identifier: str, event_time: datetime, row: Row) -> bytes:
    """The event as JSON on the ``events`` topic (the :class:`~schemas.events.Event` contract),
    built without validation: the rows were validated when read."""
    return orjson.dumps({"schema_version": 1, "event_id": identifier, "event_time": event_time,
                         "entity": row.entity, "fields": row.fields})


def label_bytes(identifier: str, label_time: datetime, label: LabelValue) -> bytes:
    """The label as JSON on the ``labels`` topic (the :class:`~schemas.events.Label` contract)."""
    return orjson.dumps({"schema_version": 1, "event_id": identifier, "label_time": label_time,
                         "label": label})


def schedule(start: datetime, rate: float, index: int) -> datetime:
    """When event ``index`` happens on a fixed schedule of ``rate`` events/s from ``start``."""
    return start + timedelta(seconds=index / rate)
