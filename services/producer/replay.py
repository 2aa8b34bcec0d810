"""Replayed files: rows of a CSV or JSONL file, and how each becomes an event and its label.

Pure logic, no Kafka. :func:`read_rows` yields the rows of a file with their line numbers;
:class:`RowConverter` turns one row into an :class:`~schemas.events.Event` and its
:class:`~schemas.events.LabelValue` following the spec's ``[source]`` section, or raises
:class:`BadRow` naming the file, the line and the problem. When the source has a time column,
:meth:`RowConverter.times` reads the row's own event time (and label time).

>>> from schemas.spec import load_spec
>>> converter = RowConverter(load_spec("elec2"), "elec2.csv")
>>> row = SourceRow(2, 1, {"period": "0.5", "nswprice": "0.05", "nswdemand": "0.4",
...                        "vicprice": "0.003", "vicdemand": "0.42", "transfer": "0.41",
...                        "class": "1"})
>>> event, label = converter.convert(row, datetime(2026, 1, 1, tzinfo=UTC))
>>> event.event_id, event.entity, event.fields["period"], label
('elec2-1', {'market': 'nsw'}, 0.5, 1)
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from pydantic import ValidationError

from schemas.events import Event, FieldValue, LabelValue
from schemas.spec import FieldSpec, PipelineSpec, SourceSpec
from services.producer.data_time import parse_time

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})


class ReplayError(ValueError):
    """A file that cannot be replayed: unknown format, unreadable, or a spec without a source."""


class BadRow(ReplayError):
    """One row that cannot become an event and a label; the message names file, line, problem."""

    def __init__(self, path: str, line: int, problem: str) -> None:
        super().__init__(f"{path} line {line}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem


@dataclass(frozen=True)
class SourceRow:
    """One row of a file: the line it ends on (1-based; a quoted CSV value may span lines), its
    number among the data rows (1-based), and its values (``None`` or with ``problem`` set when
    the line could not be parsed)."""

    line: int
    number: int
    values: Mapping[str, object] | None
    problem: str | None = None


@dataclass(frozen=True)
class RowTimes:
    """A row's own times: its event time and, from a label time column, its label's time."""

    event_time: datetime
    label_time: datetime | None = None


def file_format(path: Path) -> str:
    """``csv`` or ``jsonl``, from the file's suffix; :class:`ReplayError` for any other."""
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise ReplayError(
            f"{path}: cannot tell the format from the suffix {path.suffix!r}; "
            f"expected one of {', '.join(FORMATS)}"
        ) from None


def read_rows(path: Path, required_columns: Sequence[str] = ()) -> Iterator[SourceRow]:
    """The data rows of a CSV (with a header line) or JSONL file (one object per line), in order.

    A CSV header that lacks one of ``required_columns`` raises :class:`ReplayError` before the
    first row. Blank JSONL lines are skipped. A line that is not a JSON object, or a CSV row with
    more or fewer values than the header has columns, is yielded with its ``problem`` set, so the
    caller decides whether that stops the replay.
    """
    kind = file_format(path)
    if not path.is_file():
        raise ReplayError(f"{path}: no such file")
    if kind == "csv":
        return _read_csv(path, required_columns)
    return _read_jsonl(path)


def _read_csv(path: Path, required_columns: Sequence[str]) -> Iterator[SourceRow]:
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        try:
            header = list(reader.fieldnames or [])
            if not header:
                raise ReplayError(f"{path}: empty file, expected a header line")
            missing = [column for column in required_columns if column not in header]
            if missing:
                raise ReplayError(f"{path} line 1: the header has no column(s) {missing}")
            for number, values in enumerate(reader, start=1):
                yield SourceRow(reader.line_num, number, values, _shape_problem(values, header))
        except csv.Error as error:
            raise ReplayError(f"{path} line {reader.line_num + 1}: {error}") from None
        except UnicodeDecodeError as error:  # decoded by blocks: no line to name
            raise ReplayError(f"{path}: not UTF-8 text: {error}") from None


def _shape_problem(values: dict[str | None, object], header: list[str]) -> str | None:
    if None in values:  # DictReader keeps the values beyond the header under None
        extra = values[None]
        given = len(header) + (len(extra) if isinstance(extra, list) else 1)
        return f"{given} values for {len(header)} columns"
    if None in values.values():  # and fills in the missing ones with None
        given = sum(value is not None for value in values.values())
        return f"{given} values for {len(header)} columns"
    return None


def _read_jsonl(path: Path) -> Iterator[SourceRow]:
    number = 0
    with path.open("rb") as file:
        for line, text in enumerate(file, start=1):
            if not text.strip():
                continue
            number += 1
            try:
                document = orjson.loads(text)
            except orjson.JSONDecodeError as error:
                yield SourceRow(line, number, None, f"not valid JSON: {error}")
                continue
            if not isinstance(document, dict):
                kind = type(document).__name__
                yield SourceRow(line, number, None, f"expected a JSON object, got {kind}")
                continue
            yield SourceRow(line, number, document)


def source_of(spec: PipelineSpec) -> SourceSpec:
    """The spec's ``[source]`` section; :class:`ReplayError` when it has none."""
    if spec.source is None:
        raise ReplayError(
            f"spec '{spec.name}' has no [source] section saying which column is the label; "
            f"add one, e.g. [source] label_column = \"label\""
        )
    return spec.source


class RowConverter:
    """Turns rows into events and labels for one spec and file (the file only names errors)."""

    def __init__(self, spec: PipelineSpec, path: str) -> None:
        self._spec = spec
        self._source = source_of(spec)
        self._path = path

    def required_columns(self) -> list[str]:
        """Columns a CSV header must have: label, id, entity columns and required fields."""
        columns = [self._source.label_column]
        if self._source.id_column is not None:
            columns.append(self._source.id_column)
        columns.extend(self._source.entity_columns.values())
        columns.extend(column for column in (self._source.time_column,
                                             self._source.label_time_column) if column)
        columns.extend(name for name, field in self._spec.fields.items() if field.required)
        return list(dict.fromkeys(columns))

    @property
    def keeps_data_time(self) -> bool:
        """Whether events keep the file's own times (the source names a time column)."""
        return self._source.time_column is not None

    @property
    def has_label_times(self) -> bool:
        """Whether labels keep the file's own label times (a label time column)."""
        return self._source.label_time_column is not None

    def times(self, row: SourceRow) -> RowTimes:
        """The row's event time (and label time) from its time columns; :class:`BadRow` when a
        time is missing, not in the source's ``time_format``, or the label time is earlier than
        the event time. ``ReplayError`` when the source has no time column."""
        column = self._source.time_column
        if column is None:
            raise ReplayError(f"spec '{self._spec.name}': [source] has no time_column")
        if row.values is None or row.problem is not None:
            raise BadRow(self._path, row.line, row.problem or "no values")
        event_time = self._time(row.values, row.line, column, "event time")
        label_column = self._source.label_time_column
        if label_column is None:
            return RowTimes(event_time)
        label_time = self._time(row.values, row.line, label_column, "label time")
        if label_time < event_time:
            raise BadRow(self._path, row.line,
                         f"label time (column '{label_column}') {label_time.isoformat()} is "
                         f"earlier than the event time {event_time.isoformat()}")
        return RowTimes(event_time, label_time)

    def _time(self, values: Mapping[str, object], line: int, column: str, what: str) -> datetime:
        try:
            return parse_time(_cell(values, column), self._source.time_format)
        except ValueError as error:
            raise BadRow(self._path, line, f"{what} (column '{column}'): {error}") from None

    def convert(self, row: SourceRow, event_time: datetime) -> tuple[Event, LabelValue]:
        """The event of ``row`` at ``event_time`` and its label; :class:`BadRow` if impossible."""
        if row.values is None or row.problem is not None:
            raise BadRow(self._path, row.line, row.problem or "no values")
        try:
            event = Event(
                event_id=self._event_id(row.number, row.values),
                event_time=event_time.astimezone(UTC),
                entity=self._entity(row.values),
                fields=self._fields(row.values),
            )
            return event, self._label(row.values)
        except ValidationError as error:
            raise BadRow(self._path, row.line, _summarise(error)) from None
        except ValueError as error:
            raise BadRow(self._path, row.line, str(error)) from None

    def _event_id(self, number: int, values: Mapping[str, object]) -> str:
        column = self._source.id_column
        if column is None:
            return f"{self._spec.name}-{number}"
        return _text(_cell(values, column), f"event id (column '{column}')")

    def _entity(self, values: Mapping[str, object]) -> dict[str, str]:
        entity = dict(self._source.entity)
        for key, column in self._source.entity_columns.items():
            entity[key] = _text(_cell(values, column), f"entity '{key}' (column '{column}')")
        return entity

    def _fields(self, values: Mapping[str, object]) -> dict[str, FieldValue]:
        fields: dict[str, FieldValue] = {}
        for name, spec in self._spec.fields.items():
            if name not in values and not spec.required:
                continue
            value = _cell(values, name)
            if value is None or value == "":
                if spec.required:
                    raise ValueError(f"field '{name}' is empty")
                fields[name] = None
                continue
            fields[name] = parse_field(name, value, spec)
        return fields

    def _label(self, values: Mapping[str, object]) -> LabelValue:
        column = self._source.label_column
        value = _cell(values, column)
        if value is None or value == "":
            raise ValueError(f"label (column '{column}') is empty")
        return parse_label(value, self._spec.label.type, column)


def parse_field(name: str, value: object, spec: FieldSpec) -> FieldValue:
    """``value`` (a CSV string or a JSON scalar) as the field's type; ValueError if it is not."""
    where = f"field '{name}'"
    if spec.type == "categorical":
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"{where}: expected a category (string), got {value!r}")
    if spec.type == "bool":
        return _parse_bool(value, where)
    number = _parse_number(value, where)
    if spec.type == "int":
        if not float(number).is_integer():
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return int(number)
    return float(number)


def parse_label(value: object, label_type: str, column: str) -> LabelValue:
    """A class (int when it is written as an integer, else as given) or a regression target."""
    where = f"label (column '{column}')"
    if label_type == "regression":
        return float(_parse_number(value, where))
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(f"{where}: expected a class, got the number {value!r}")
    if isinstance(value, str):
        text = value.strip()
        return int(text) if _is_integer(text) else text
    raise ValueError(f"{where}: expected a class, got {value!r}")


def _summarise(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in detail['loc']) or 'event'}: {detail['msg']}"
        for detail in error.errors()
    )


def _cell(values: Mapping[str, object], column: str) -> object:
    if column not in values:
        raise ValueError(f"missing column '{column}'")
    return values[column]


def _text(value: object, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{what}: expected a string, got {value!r}")
    text = str(value)
    if not text:
        raise ValueError(f"{what} is empty")
    return text


def _parse_number(value: object, where: str) -> int | float:
    if isinstance(value, bool):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if _is_integer(text):
            return int(text)
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{where}: {value!r} is not a number") from None
    else:
        raise ValueError(f"{where}: expected a number, got {value!r}")
    if not math.isfinite(number):
        raise ValueError(f"{where}: {value!r} is not a finite number")
    return number


def _parse_bool(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise ValueError(f"{where}: expected a bool (true/false, 1/0), got {value!r}")


def _is_integer(text: str) -> bool:
    digits = text[1:] if text[:1] in "+-" else text
    return digits.isdigit() and digits.isascii()
