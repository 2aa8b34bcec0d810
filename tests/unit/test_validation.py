"""Event validation: every way an event can be invalid gives its own reason code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from schemas.spec import FieldSpec, PipelineSpec, load_spec
from services.common.dead_letters import DeadLetter
from services.features.validation import Limits, validate_event

NOW = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
LIMITS = Limits()


@pytest.fixture(scope="module")
def spec() -> PipelineSpec:
    return load_spec("clicks")


def event(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "event_id": "e-1",
        "event_time": (NOW - timedelta(seconds=2)).isoformat(),
        "entity": {"user": "u-1", "item": "i-1"},
        "fields": {"device": "mobile", "hour": 14, "price": 12.5, "position": 3},
    }
    fields = changes.pop("fields", None)
    document.update(changes)
    if fields is not None:
        document["fields"] = {**document["fields"], **fields}
    return document


def rejected(raw: bytes | None, spec: PipelineSpec, limits: Limits = LIMITS) -> DeadLetter:
    with pytest.raises(DeadLetter) as raised:
        validate_event(raw, spec, NOW, limits)
    return raised.value


def test_a_valid_event_passes_unchanged(spec: PipelineSpec) -> None:
    validated = validate_event(orjson.dumps(event()), spec, NOW, LIMITS)
    assert validated.event_id == "e-1"
    assert validated.fields == {"device": "mobile", "hour": 14, "price": 12.5, "position": 3}
    assert validated.entity == {"user": "u-1", "item": "i-1"}


def test_boundary_values_are_valid(spec: PipelineSpec) -> None:
    for fields in ({"hour": 0, "price": 0}, {"hour": 23, "price": 10000}, {"hour": 5.0}):
        validate_event(orjson.dumps(event(fields=fields)), spec, NOW, LIMITS)


def test_an_oversized_event_is_rejected_before_parsing(spec: PipelineSpec) -> None:
    raw = b"x" * 101  # not even JSON: size is checked first
    dead = rejected(raw, spec, Limits(max_bytes=100))
    assert dead.reason_code == "oversized"
    assert "101" in dead.reason


def test_malformed_json_is_rejected(spec: PipelineSpec) -> None:
    assert rejected(b'{"event_id": ', spec).reason_code == "malformed_json"
    assert rejected(None, spec).reason_code == "malformed_json"


def test_a_contract_violation_is_schema_invalid(spec: PipelineSpec) -> None:
    document = event()
    del document["event_time"]
    assert rejected(orjson.dumps(document), spec).reason_code == "schema_invalid"
    naive = event(event_time="2026-11-22T14:59:58")
    assert rejected(orjson.dumps(naive), spec).reason_code == "schema_invalid"


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"fields": {"colour": "red"}}, "unknown field(s) ['colour']"),
        ({"fields": {"hour": 24}}, "field 'hour': 24 is above the maximum 23.0"),
        ({"fields": {"price": -0.01}}, "field 'price': -0.01 is below the minimum 0.0"),
        ({"fields": {"hour": "14"}}, "field 'hour': expected a number, got str"),
        ({"fields": {"hour": 14.5}}, "field 'hour': expected an integer, got 14.5"),
        ({"fields": {"price": True}}, "field 'price': expected a number, got bool"),
        ({"fields": {"device": 3}}, "field 'device': expected a string category, got int"),
        ({"fields": {"device": "watch"}}, "field 'device': 'watch' is not one of"),
        ({"fields": {"device": None}}, "field 'device': is null but required"),
        ({"entity": {"user": "u-1"}}, "entity is missing key(s) ['item']"),
    ],
    ids=["unknown-field", "above-max", "below-min", "string-for-int", "fraction-for-int",
         "bool-for-float", "int-for-category", "unlisted-category", "null-required",
         "missing-entity-key"],
)
def test_spec_violations_name_the_problem(
    spec: PipelineSpec, changes: dict[str, Any], words: str
) -> None:
    dead = rejected(orjson.dumps(event(**changes)), spec)
    assert dead.reason_code == "spec_invalid"
    assert words in dead.reason


def test_a_missing_required_field_is_rejected(spec: PipelineSpec) -> None:
    document = event()
    del document["fields"]["price"]
    dead = rejected(orjson.dumps(document), spec)
    assert dead.reason_code == "spec_invalid"
    assert "field 'price': is required" in dead.reason


def test_optional_field_may_be_missing_or_null() -> None:
    spec = load_spec("clicks")
    optional = spec.model_copy(update={"fields": {
        **spec.fields, "price": FieldSpec(type="float", min=0, required=False),
    }})
    assert isinstance(optional, PipelineSpec)
    for price in (None, "absent"):
        document = event(fields={"price": price})
        if price == "absent":
            del document["fields"]["price"]
        validate_event(orjson.dumps(document), optional, NOW, LIMITS)


def test_a_bool_field_takes_only_bools() -> None:
    spec = load_spec("clicks")
    with_flag = spec.model_copy(update={"fields": {
        **spec.fields, "promo": FieldSpec(type="bool"),
    }})
    assert isinstance(with_flag, PipelineSpec)
    validate_event(orjson.dumps(event(fields={"promo": False})), with_flag, NOW, LIMITS)
    dead = rejected(orjson.dumps(event(fields={"promo": 1})), with_flag)
    assert "field 'promo': expected a bool, got int" in dead.reason


@pytest.mark.parametrize(
    ("offset", "accepted", "words"),
    [
        (timedelta(minutes=4), True, ""),
        (timedelta(minutes=6), False, "in the future"),
        (-timedelta(days=29), True, ""),
        (-timedelta(days=31), False, "in the past"),
    ],
    ids=["near-future", "far-future", "old-but-ok", "too-old"],
)
def test_event_time_must_be_near_now(
    spec: PipelineSpec, offset: timedelta, accepted: bool, words: str
) -> None:
    raw = orjson.dumps(event(event_time=(NOW + offset).isoformat()))
    if accepted:
        validate_event(raw, spec, NOW, LIMITS)
    else:
        dead = rejected(raw, spec)
        assert dead.reason_code == "spec_invalid"
        assert words in dead.reason


def test_time_limits_are_configurable(spec: PipelineSpec) -> None:
    raw = orjson.dumps(event(event_time=(NOW + timedelta(seconds=10)).isoformat()))
    validate_event(raw, spec, NOW, LIMITS)
    assert rejected(raw, spec, Limits(max_future=timedelta(seconds=5))).reason_code == (
        "spec_invalid"
    )
