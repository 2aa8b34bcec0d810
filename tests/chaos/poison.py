"""A corpus of bad messages, each built from a good event, and the dead letter it must become.

:data:`KINDS` names every kind; :func:`make_poison` builds one. Events-topic kinds are judged by
the features service, except ``duplicate_event_id`` (the same event published twice), which only
the model can tell from a redelivery; labels-topic kinds are judged by the model. Pure logic: the
chaos test publishes them, a unit test checks the verdicts against the validation code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import orjson

from schemas.codec import encode
from schemas.dead_letters import ReasonCode
from schemas.events import Event

Topic = Literal["events", "labels"]


@dataclass(frozen=True)
class Poison:
    """One bad message: where it goes, its bytes, and the dead letter it must end as."""

    kind: str
    topic: Topic
    key: bytes | None
    value: bytes | None
    reason_code: ReasonCode
    service: Literal["features", "model"]


Builder = Callable[[Event, str], Poison]
"""(the latest good event, a unique tag) -> the poison."""


def _document(event: Event) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(encode(event))
    return document


def _event_poison(kind: str, reason: ReasonCode, change: Callable[[dict[str, Any], str], None],
                  ) -> Builder:
    """A poison made by editing the good event's JSON document (under a fresh event_id)."""

    def build(good: Event, tag: str) -> Poison:
        document = _document(good)
        document["event_id"] = f"poison-{tag}"
        change(document, tag)
        key = next(iter(good.entity.values())).encode()
        return Poison(kind, "events", key, orjson.dumps(document), reason, "features")

    return build


def _raw_event_poison(kind: str, reason: ReasonCode,
                      make: Callable[[bytes, str], bytes | None]) -> Builder:
    """A poison made from the good event's bytes (re-encoded under a fresh event_id)."""

    def build(good: Event, tag: str) -> Poison:
        fresh = encode(good.model_copy(update={"event_id": f"poison-{tag}"}))
        key = next(iter(good.entity.values())).encode()
        return Poison(kind, "events", key, make(fresh, tag), reason, "features")

    return build


def _label_poison(kind: str, reason: ReasonCode, make: Callable[[Event, str], bytes]) -> Builder:
    def build(good: Event, tag: str) -> Poison:
        return Poison(kind, "labels", f"poison-{tag}".encode(), make(good, tag), reason, "model")

    return build


def _label(good: Event, event_id: str, **changes: Any) -> dict[str, Any]:
    return {"schema_version": 1, "event_id": event_id,
            "label_time": good.event_time.isoformat(), "label": 1, **changes}


def _set(path: str, value: Any) -> Callable[[dict[str, Any], str], None]:
    """Set ``document[a][b]`` for ``path`` "a.b" (or a top-level key)."""
    def change(document: dict[str, Any], _tag: str) -> None:
        *parents, last = path.split(".")
        target = document
        for parent in parents:
            target = target[parent]
        target[last] = value
    return change


def _drop(path: str) -> Callable[[dict[str, Any], str], None]:
    def change(document: dict[str, Any], _tag: str) -> None:
        *parents, last = path.split(".")
        target = document
        for parent in parents:
            target = target[parent]
        del target[last]
    return change


def _shift_time(delta: timedelta) -> Callable[[dict[str, Any], str], None]:
    def change(document: dict[str, Any], _tag: str) -> None:
        document["event_time"] = (Event.model_validate(document).event_time + delta).isoformat()
    return change


def _naive_time(document: dict[str, Any], _tag: str) -> None:
    document["event_time"] = Event.model_validate(document).event_time.replace(
        tzinfo=None).isoformat()


def _pad(document: dict[str, Any], _tag: str) -> None:
    document["fields"]["notes"] = "x" * 100_000


def _duplicate(good: Event, _tag: str) -> Poison:
    """The good event itself, published again: a second event with its ``event_id``."""
    key = next(iter(good.entity.values())).encode()
    return Poison("duplicate_event_id", "events", key, encode(good), "duplicate", "model")


BUILDERS: dict[str, Builder] = {
    "truncated_json": _raw_event_poison(
        "truncated_json", "malformed_json", lambda raw, _t: raw[: len(raw) // 2]),
    "not_json": _raw_event_poison(
        "not_json", "malformed_json", lambda _raw, tag: f"event {tag}, plain text".encode()),
    "empty_value": _raw_event_poison("empty_value", "malformed_json", lambda _raw, _t: b""),
    "null_value": _raw_event_poison("null_value", "malformed_json", lambda _raw, _t: None),
    "bad_utf8": _raw_event_poison(
        "bad_utf8", "malformed_json", lambda raw, _t: raw.replace(b'"poison-', b'"\xff\xfe-', 1)),
    "json_array": _raw_event_poison(
        "json_array", "malformed_json", lambda raw, _t: b"[" + raw + b"]"),
    "nan_literal": _raw_event_poison(
        "nan_literal", "malformed_json",
        lambda raw, _t: raw.replace(b'"fields":{', b'"fields":{"nan":NaN,', 1)),
    "infinite_number": _raw_event_poison(
        "infinite_number", "malformed_json",
        lambda raw, _t: raw.replace(b'"fields":{', b'"fields":{"inf":1e999,', 1)),
    "missing_event_id": _event_poison("missing_event_id", "schema_invalid", _drop("event_id")),
    "unknown_schema_version": _event_poison(
        "unknown_schema_version", "schema_invalid", _set("schema_version", 99)),
    "naive_timestamp": _event_poison("naive_timestamp", "schema_invalid", _naive_time),
    "unknown_property": _event_poison(
        "unknown_property", "schema_invalid", _set("tenant", "acme")),
    "nested_field": _event_poison(
        "nested_field", "schema_invalid", _set("fields.price", {"amount": 12.5})),
    "number_as_string": _event_poison(
        "number_as_string", "spec_invalid", _set("fields.price", "12.50")),
    "out_of_range": _event_poison("out_of_range", "spec_invalid", _set("fields.position", 999)),
    "unknown_category": _event_poison(
        "unknown_category", "spec_invalid", _set("fields.device", "toaster")),
    "missing_entity_key": _event_poison(
        "missing_entity_key", "spec_invalid", _drop("entity.item")),
    "unknown_field": _event_poison("unknown_field", "spec_invalid", _set("fields.colour", "red")),
    "far_future": _event_poison("far_future", "spec_invalid", _shift_time(timedelta(days=1))),
    "far_past": _event_poison("far_past", "spec_invalid", _shift_time(timedelta(days=-400))),
    "huge_payload": _event_poison("huge_payload", "oversized", _pad),
    "duplicate_event_id": _duplicate,
    "label_truncated": _label_poison(
        "label_truncated", "malformed_json",
        lambda good, tag: orjson.dumps(_label(good, f"poison-{tag}"))[:20]),
    "label_wrong_type": _label_poison(
        "label_wrong_type", "schema_invalid",
        lambda good, tag: orjson.dumps(_label(good, good.event_id, label={"clicked": True}))),
    "label_missing_time": _label_poison(
        "label_missing_time", "schema_invalid",
        lambda good, tag: orjson.dumps({"event_id": good.event_id, "label": 1})),
    "label_for_unknown_event": _label_poison(
        "label_for_unknown_event", "unknown_event",
        lambda good, tag: orjson.dumps(_label(good, f"ghost-{tag}"))),
}
"""Every kind of poison, by name."""

KINDS: tuple[str, ...] = tuple(BUILDERS)


def make_poison(kind: str, good: Event, tag: str) -> Poison:
    """The ``kind`` poison built from ``good``; ``tag`` makes its ids unique."""
    return BUILDERS[kind](good, tag)
