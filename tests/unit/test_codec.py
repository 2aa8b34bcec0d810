"""Topic payloads through the wire format: round-trips, closed models, rejected values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from pydantic import ValidationError

from schemas.alerts import DriftAlert
from schemas.base import Contract
from schemas.codec import ContractError, decode, encode, encode_plain
from schemas.events import Event, Label
from schemas.features import FeatureVector
from schemas.predictions import Outcome, Prediction
from schemas.snapshots import ModelSnapshot

T0 = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))

EXAMPLES: list[Contract] = [
    Event(event_id="e-1", event_time=T0, entity={"user": "u-1", "item": "i-9"},
          fields={"device": "mobile", "hour": 15, "price": 12.5, "promo": True, "note": None}),
    Label(event_id="e-1", label_time=T0 + timedelta(seconds=4), label=1),
    Label(event_id="e-2", label_time=T0.astimezone(PLUS_TWO), label="spam"),
    FeatureVector(event_id="e-1", event_time=T0, entity={"user": "u-1"},
                  features={"price": 12.5, "device": "mobile", "user_mean_price_5m": None},
                  ingested_at=T0, computed_at=T0 + timedelta(milliseconds=3)),
    Prediction(event_id="e-1", model="logreg", model_version=3, prediction=True,
               probabilities={"True": 0.8, "False": 0.2}, score=0.8, event_time=T0,
               features_at=T0, predicted_at=T0 + timedelta(milliseconds=5)),
    Prediction(event_id="e-1", model="tree", model_version=1, role="challenger",
               prediction=None, event_time=T0, features_at=T0, predicted_at=T0),
    Outcome(event_id="e-1", model="logreg", model_version=3, prediction=True, score=0.8,
            label=False, correct=False, timed_out=True, label_delay_seconds=30.0,
            event_time=T0, learned_at=T0 + timedelta(seconds=30)),
    DriftAlert(alert_id="a-1", kind="concept", detector="ADWIN", target="error:logreg",
               model="logreg", statistic=0.4, threshold=0.002, stream_position=1234,
               event_time=T0, detected_at=T0),
    ModelSnapshot(model="logreg", model_version=2, created_at=T0,
                  library_versions={"river": "0.22.0"}, offsets={"features:0": 42},
                  labels_learned=40, state="cGlja2xl"),
]


@pytest.mark.parametrize("payload", EXAMPLES, ids=lambda p: type(p).__name__)
def test_every_contract_round_trips_through_encode_and_decode(payload: Contract) -> None:
    assert decode(type(payload), encode(payload)) == payload


@pytest.mark.parametrize("payload", EXAMPLES, ids=lambda p: type(p).__name__)
def test_unknown_top_level_field_is_schema_invalid(payload: Contract) -> None:
    document = orjson.loads(encode(payload))
    document["surprise"] = 1
    with pytest.raises(ContractError) as raised:
        decode(type(payload), orjson.dumps(document))
    assert raised.value.reason_code == "schema_invalid"
    assert "surprise" in raised.value.reason


def test_encoded_bytes_are_plain_json_with_rfc3339_timestamps() -> None:
    label = Label(event_id="e-1", label_time=T0, label=1)
    document = orjson.loads(encode(label))
    assert document == {"schema_version": 1, "event_id": "e-1",
                        "label_time": "2026-11-22T15:00:00Z", "label": 1}


def test_a_label_published_by_another_client_decodes() -> None:
    raw = b'{"event_id": "e-42", "label_time": "2026-11-22T15:00:04+00:00", "label": true}'
    label = decode(Label, raw)
    assert label.event_id == "e-42"
    assert label.label is True
    assert label.label_time == T0 + timedelta(seconds=4)


@pytest.mark.parametrize("stamp", ["2026-11-22T15:00:00", "2026-11-22 15:00:00"])
def test_naive_timestamps_are_rejected(stamp: str) -> None:
    raw = orjson.dumps({"event_id": "e-1", "label_time": stamp, "label": 1})
    with pytest.raises(ContractError) as raised:
        decode(Label, raw)
    assert raised.value.reason_code == "schema_invalid"
    assert "label_time" in raised.value.reason


def test_naive_datetime_is_rejected_when_building_a_contract() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        Label(event_id="e-1", label_time=datetime(2026, 1, 1), label=1)  # noqa: DTZ001


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_rejected(bad: float) -> None:
    with pytest.raises(ValidationError):
        Prediction(event_id="e", model="m", model_version=1, prediction=True, score=bad,
                   event_time=T0, features_at=T0, predicted_at=T0)
    with pytest.raises(ValidationError):
        Event(event_id="e", event_time=T0, entity={"u": "1"}, fields={"x": bad})
    with pytest.raises(ValidationError):
        FeatureVector(event_id="e", event_time=T0, entity={}, features={"x": bad},
                      ingested_at=T0, computed_at=T0)


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"1e999"])
def test_non_finite_numbers_on_the_wire_are_rejected(number: bytes) -> None:
    raw = (b'{"event_id": "e", "event_time": "2026-01-01T00:00:00Z", '
           b'"entity": {"u": "1"}, "fields": {"x": ' + number + b"}}")
    with pytest.raises(ContractError) as raised:
        decode(Event, raw)
    assert raised.value.reason_code in ("malformed_json", "schema_invalid")


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"not json", b"\xff\xfe", b"[1, 2]", b'"a string"', b"42", None],
    ids=["empty", "truncated", "text", "binary", "array", "string", "number", "null"],
)
def test_bytes_that_are_not_a_json_object_are_malformed(raw: bytes | None) -> None:
    with pytest.raises(ContractError) as raised:
        decode(Event, raw)
    assert raised.value.reason_code == "malformed_json"
    assert raised.value.reason


@pytest.mark.parametrize(
    "document",
    [
        {"event_time": "2026-01-01T00:00:00Z", "entity": {"u": "1"}, "fields": {}},
        {"event_id": "", "event_time": "2026-01-01T00:00:00Z", "entity": {"u": "1"},
         "fields": {}},
        {"event_id": "e", "event_time": "2026-01-01T00:00:00Z", "entity": {}, "fields": {}},
        {"event_id": "e", "event_time": "yesterday", "entity": {"u": "1"}, "fields": {}},
        {"event_id": "e", "event_time": "2026-01-01T00:00:00Z", "entity": {"u": "1"},
         "fields": {"nested": {"a": 1}}},
        {"schema_version": 2, "event_id": "e", "event_time": "2026-01-01T00:00:00Z",
         "entity": {"u": "1"}, "fields": {}},
    ],
    ids=["no-id", "empty-id", "no-entity", "bad-time", "nested-field", "future-version"],
)
def test_json_objects_that_break_the_contract_are_schema_invalid(
    document: dict[str, object],
) -> None:
    with pytest.raises(ContractError) as raised:
        decode(Event, orjson.dumps(document))
    assert raised.value.reason_code == "schema_invalid"


def test_schema_invalid_reason_names_the_field_and_is_bounded() -> None:
    document = {f"extra_{n}": n for n in range(20)}
    with pytest.raises(ContractError) as raised:
        decode(Label, orjson.dumps(document))
    assert "event_id" in raised.value.reason
    assert "more" in raised.value.reason
    assert len(raised.value.reason) < 1000


def test_contracts_are_immutable() -> None:
    label = Label(event_id="e-1", label_time=T0, label=1)
    with pytest.raises(ValidationError):
        label.event_id = "e-2"  # type: ignore[misc]


PLAIN_STAMPS = ["2026-11-22T15:00:00Z", "2026-11-22T15:00:00.123Z", "2026-11-22T15:00:00+00:00",
                "2026-11-22T15:00:00.000001+02:00", "2026-11-22T15:00:00-00:30"]


@pytest.mark.parametrize("stamp", PLAIN_STAMPS)
def test_encode_plain_writes_the_bytes_encode_writes(stamp: str) -> None:
    parsed = decode(Label, orjson.dumps({"event_id": "e", "label_time": stamp, "label": 1}))
    for when in (parsed.label_time, datetime.fromisoformat(stamp), T0.astimezone(PLUS_TWO)):
        vector = FeatureVector(
            event_id="e-1", event_time=when, entity={"user": "u-1", "item": "i-9"},
            features={"price": 12.5, "device": "mobile", "hour": 15.0, "none": None,
                      "big": 1e300, "tiny": -2.5e-9},
            ingested_at=when, computed_at=T0, event_partition=3, event_offset=12345)
        assert encode_plain(vector) == encode(vector)
        assert encode_plain(parsed) == encode(parsed)
    unplaced = FeatureVector(event_id="e-2", event_time=T0, entity={"user": "u"}, features={},
                             ingested_at=T0, computed_at=T0)
    assert encode_plain(unplaced) == encode(unplaced)
