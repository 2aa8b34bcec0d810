"""A replayed file's own times: one cell of a time column read as an aware UTC datetime.

:func:`parse_time` reads a CSV string or a JSON scalar in one of the ``[source]``
``time_format`` values, and raises ``ValueError`` saying what was expected. A time written
without a UTC offset is taken as UTC.

>>> parse_time("2026-05-01T12:00:00+02:00", "iso8601").isoformat()
'2026-05-01T10:00:00+00:00'
>>> parse_time("2026-05-01 12:00", "iso8601").isoformat()
'2026-05-01T12:00:00+00:00'
>>> parse_time(1_700_000_000, "epoch_seconds").isoformat()
'2023-11-14T22:13:20+00:00'
>>> parse_time("1700000000500", "epoch_millis").isoformat()
'2023-11-14T22:13:20.500000+00:00'
>>> parse_time("01/05/2026 12:30", "%d/%m/%Y %H:%M").isoformat()
'2026-05-01T12:30:00+00:00'
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_UNITS = {"epoch_seconds": 1.0, "epoch_millis": 1000.0}


def parse_time(value: object, time_format: str) -> datetime:
    """``value`` as an aware UTC datetime read with ``time_format`` (``iso8601``,
    ``epoch_seconds``, ``epoch_millis`` or a ``strptime`` pattern); ``ValueError`` if it is
    empty, of the wrong kind, or not a time in that format."""
    if value is None or value == "":
        raise ValueError("is empty")
    if time_format in EPOCH_UNITS:
        return _from_epoch(value, time_format)
    if not isinstance(value, str):
        raise ValueError(f"expected {_describe(time_format)} string, got {value!r}")
    text = value.strip()
    try:
        if time_format == "iso8601":
            moment = datetime.fromisoformat(text)
        else:
            moment = datetime.strptime(text, time_format)  # noqa: DTZ007 (naive means UTC)
    except ValueError:
        raise ValueError(f"{value!r} is not {_describe(time_format)} time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _from_epoch(value: object, time_format: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a number ({time_format}), got {value!r}")
    if isinstance(value, str):
        try:
            number = float(value.strip()) if not _is_integer(value.strip()) else int(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number ({time_format})") from None
    else:
        number = value
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number ({time_format})")
    unit = EPOCH_UNITS[time_format]
    try:
        if isinstance(number, int):  # exact: no float rounding of large millisecond counts
            whole, part = divmod(number, int(unit))
            return EPOCH + timedelta(seconds=whole, microseconds=part * 1_000_000 // int(unit))
        return EPOCH + timedelta(seconds=number / unit)
    except OverflowError:
        raise ValueError(f"{value!r} is out of range ({time_format})") from None


def _describe(time_format: str) -> str:
    return "an ISO 8601" if time_format == "iso8601" else f"a '{time_format}'"


def _is_integer(text: str) -> bool:
    digits = text[1:] if text[:1] in "+-" else text
    return digits.isdigit() and digits.isascii()
