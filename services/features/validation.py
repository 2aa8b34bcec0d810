"""Event validation against the pipeline spec: pure logic, no Kafka.

:func:`validate_event` turns raw bytes into an :class:`~schemas.events.Event` or raises
:class:`~services.common.dead_letters.DeadLetter` with a reason code and a readable reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.codec import ContractError, decode
from schemas.events import Event
from schemas.spec import FieldSpec, PipelineSpec
from services.common.dead_letters import DeadLetter


@dataclass(frozen=True)
class Limits:
    """Bounds on what an event may be, beyond the spec's fields."""

    max_bytes: int = 64 * 1024
    max_future: timedelta = timedelta(minutes=5)
    max_past: timedelta = timedelta(days=30)


def validate_event(raw: bytes | None, spec: PipelineSpec, now: datetime, limits: Limits) -> Event:
    """Decode ``raw`` and check it against the contract, the spec and ``limits``."""
    if raw is not None and len(raw) > limits.max_bytes:
        raise DeadLetter("oversized", f"{len(raw)} bytes, more than the {limits.max_bytes} allowed")
    try:
        event = decode(Event, raw)
    except ContractError as error:
        raise DeadLetter.from_contract_error(error) from error
    _check_time(event, now, limits)
    missing_keys = [key for key in spec.entity_keys if key not in event.entity]
    if missing_keys:
        raise DeadLetter("spec_invalid", f"entity is missing key(s) {missing_keys}")
    unknown = sorted(set(event.fields) - set(spec.fields))
    if unknown:
        raise DeadLetter("spec_invalid", f"unknown field(s) {unknown}")
    for name, field_spec in spec.fields.items():
        problem = _field_problem(event.fields.get(name), field_spec, name in event.fields)
        if problem:
            raise DeadLetter("spec_invalid", f"field '{name}': {problem}")
    return event


def _check_time(event: Event, now: datetime, limits: Limits) -> None:
    if event.event_time > now + limits.max_future:
        raise DeadLetter(
            "spec_invalid",
            f"event_time {event.event_time.isoformat()} is more than "
            f"{limits.max_future} in the future",
        )
    if event.event_time < now - limits.max_past:
        raise DeadLetter(
            "spec_invalid",
            f"event_time {event.event_time.isoformat()} is more than {limits.max_past} in the past",
        )


def _field_problem(value: object, spec: FieldSpec, present: bool) -> str | None:
    if value is None:
        if spec.required:
            return "is required" if not present else "is null but required"
        return None
    if spec.type == "categorical":
        if not isinstance(value, str):
            return f"expected a string category, got {type(value).__name__}"
        if spec.values is not None and value not in spec.values:
            return f"{value!r} is not one of {list(spec.values)}"
        return None
    if spec.type == "bool":
        return None if isinstance(value, bool) else f"expected a bool, got {type(value).__name__}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected a number, got {type(value).__name__}"
    if spec.type == "int" and isinstance(value, float) and not value.is_integer():
        return f"expected an integer, got {value}"
    if not math.isfinite(value):
        return f"{value} is not a finite number"
    if spec.min is not None and value < spec.min:
        return f"{value} is below the minimum {spec.min}"
    if spec.max is not None and value > spec.max:
        return f"{value} is above the maximum {spec.max}"
    return None
