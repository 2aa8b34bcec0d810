"""The features service's per-event steps: admit -> advance per entity stage -> finish."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from schemas.codec import decode, encode
from schemas.features import FeatureVector
from schemas.spec import PipelineSpec, load_spec
from services.common.dead_letters import DeadLetter
from services.features.aggregates import EntityState
from services.features.pipeline import (
    StagedEvent,
    admit,
    advance,
    decode_staged,
    encode_staged,
    finish,
    plan_stages,
)
from services.features.validation import Limits

NOW = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def spec() -> PipelineSpec:
    return load_spec("clicks")


def raw_event(
    event_id: str, seconds: float, user: str = "u-1", item: str = "i-1", price: float = 10.0,
    **fields: Any,
) -> bytes:
    return orjson.dumps({
        "event_id": event_id,
        "event_time": (NOW + timedelta(seconds=seconds)).isoformat(),
        "entity": {"user": user, "item": item},
        "fields": {"device": "mobile", "hour": 15, "price": price, "position": 1, **fields},
    })


class Worker:
    """The stages run in order with one state table per entity key, as the faust agents do."""

    def __init__(self, spec: PipelineSpec) -> None:
        self.spec = spec
        self.stages = plan_stages(spec)
        self.tables: dict[str, dict[str, EntityState]] = {s.entity: {} for s in self.stages}

    def process(self, raw: bytes) -> FeatureVector:
        staged = admit(raw, self.spec, NOW + timedelta(minutes=1), Limits())
        for stage in self.stages:
            key = staged.event.entity[stage.entity]
            staged, state, _ = advance(staged, stage, self.tables[stage.entity].get(key))
            self.tables[stage.entity][key] = state
        return finish(staged, NOW + timedelta(minutes=1, milliseconds=5))


def test_stages_follow_entity_key_order(spec: PipelineSpec) -> None:
    stages = plan_stages(spec)
    assert [stage.entity for stage in stages] == ["user", "item"]
    for stage in stages:
        assert {a.entity for a in stage.aggregates} == {stage.entity}
    assert sum(len(s.aggregates) for s in stages) == len(spec.aggregates)


def test_admit_starts_features_with_raw_fields_as_numbers(spec: PipelineSpec) -> None:
    staged = admit(raw_event("e-1", 0, price=12), spec, NOW, Limits())
    assert staged.features == {"device": "mobile", "hour": 15.0, "price": 12.0, "position": 1.0}
    assert all(isinstance(staged.features[n], float) for n in ("hour", "price", "position"))
    assert staged.ingested_at == NOW


def test_admit_rejects_invalid_events_with_a_dead_letter(spec: PipelineSpec) -> None:
    with pytest.raises(DeadLetter) as raised:
        admit(raw_event("e-1", 0, price=-5), spec, NOW, Limits())
    assert raised.value.reason_code == "spec_invalid"


def test_a_finished_vector_has_raw_fields_and_every_aggregate(spec: PipelineSpec) -> None:
    vector = Worker(spec).process(raw_event("e-1", 0))
    assert vector.event_id == "e-1"
    assert vector.entity == {"user": "u-1", "item": "i-1"}
    assert set(vector.features) == set(spec.fields) | {a.name for a in spec.aggregates}
    assert vector.ingested_at == NOW + timedelta(minutes=1)
    assert vector.computed_at > vector.ingested_at
    assert decode(FeatureVector, encode(vector)) == vector


def test_first_event_of_an_entity_sees_empty_windows(spec: PipelineSpec) -> None:
    features = Worker(spec).process(raw_event("e-1", 0, price=99)).features
    assert features["user_events_5m"] == 0.0
    assert features["item_events_10m_hop"] == 0.0
    assert features["user_mean_price_5m"] is None
    assert features["item_last_price"] is None


def test_aggregates_are_per_entity_and_point_in_time(spec: PipelineSpec) -> None:
    worker = Worker(spec)
    worker.process(raw_event("e-1", 0, user="u-1", item="i-1", price=10))
    worker.process(raw_event("e-2", 1, user="u-1", item="i-2", price=30))
    worker.process(raw_event("e-3", 2, user="u-2", item="i-1", price=50))
    features = worker.process(raw_event("e-4", 3, user="u-1", item="i-1", price=1000)).features
    assert features["user_events_5m"] == 2.0  # e-1, e-2 (not e-3: other user; not e-4 itself)
    assert features["user_mean_price_5m"] == 20.0
    assert features["item_events_10m_hop"] == 2.0  # e-1, e-3
    assert features["item_last_price"] == 50.0
    assert features["price"] == 1000.0


def test_an_events_own_value_never_reaches_its_own_aggregates(spec: PipelineSpec) -> None:
    outcomes = []
    for own_price in (0.0, 5.0, 9999.0):
        worker = Worker(spec)
        worker.process(raw_event("e-1", 0, price=10))
        outcomes.append(worker.process(raw_event("e-2", 1, price=own_price)).features)
    aggregates = [a.name for a in spec.aggregates]
    first = {name: outcomes[0][name] for name in aggregates}
    assert all({name: o[name] for name in aggregates} == first for o in outcomes)
    assert first["user_mean_price_5m"] == 10.0


def test_advance_does_not_change_the_staged_event_it_was_given(spec: PipelineSpec) -> None:
    staged = admit(raw_event("e-1", 0), spec, NOW, Limits())
    stage = plan_stages(spec)[0]
    advanced, state, _ = advance(staged, stage, None)
    assert set(staged.features) == set(spec.fields)
    assert set(advanced.features) == set(spec.fields) | {a.name for a in stage.aggregates}
    assert state["seq"] == 1


def test_staged_events_round_trip_through_their_internal_format(spec: PipelineSpec) -> None:
    staged = admit(raw_event("e-1", 0), spec, NOW, Limits())
    advanced, _, _ = advance(staged, plan_stages(spec)[0], None)
    restored = decode_staged(encode_staged(advanced))
    assert isinstance(restored, StagedEvent)
    assert restored == advanced


def test_the_events_position_travels_through_the_stages_into_the_vector(
    spec: PipelineSpec,
) -> None:
    staged = admit(raw_event("e-1", 0), spec, NOW, Limits(), position=(3, 1234))
    for stage in plan_stages(spec):
        staged = decode_staged(encode_staged(advance(staged, stage, None)[0]))
    vector = finish(staged, NOW)
    assert (vector.event_partition, vector.event_offset) == (3, 1234)
    unplaced = finish(admit(raw_event("e-2", 0), spec, NOW, Limits()), NOW)
    assert (unplaced.event_partition, unplaced.event_offset) == (None, None)


def test_a_redelivered_event_gets_the_same_features_and_is_not_counted_twice(
    spec: PipelineSpec,
) -> None:
    worker = Worker(spec)
    first = worker.process(raw_event("e-1", 0, price=10))
    worker.process(raw_event("e-2", 1, price=20))
    again = worker.process(raw_event("e-1", 0, price=10))  # a redelivery after a crash
    after = worker.process(raw_event("e-3", 2, price=30))
    assert again.features == first.features
    assert after.features["user_events_5m"] == 2.0
    assert after.features["user_mean_price_5m"] == 15.0


def test_a_stage_remembers_only_its_last_events(spec: PipelineSpec) -> None:
    stage = plan_stages(spec, remember=3)[0]
    state = None
    for n in range(10):
        staged = admit(raw_event(f"e-{n}", n), spec, NOW + timedelta(minutes=1), Limits())
        _, state, redelivered = advance(staged, stage, state)
        assert not redelivered
    assert state is not None
    assert [event_id for event_id, _ in state["recent"]] == ["e-7", "e-8", "e-9"]


def test_the_event_memory_keeps_values_in_the_stages_order(spec: PipelineSpec) -> None:
    stage = plan_stages(spec)[0]
    staged = admit(raw_event("e-1", 0, price=10), spec, NOW + timedelta(minutes=1), Limits())
    _, state, _ = advance(staged, stage, None)
    assert state["recent"] == [["e-1", [0.0, None]]]  # user_events_5m, user_mean_price_5m
    assert [a.name for a in stage.aggregates] == ["user_events_5m", "user_mean_price_5m"]


def test_states_that_remember_aggregates_by_name_are_still_understood(spec: PipelineSpec) -> None:
    stage = plan_stages(spec)[0]
    staged = admit(raw_event("e-1", 0), spec, NOW + timedelta(minutes=1), Limits())
    _, state, _ = advance(staged, stage, None)
    state["recent"] = [["e-1", {"user_events_5m": 7.0, "user_mean_price_5m": 3.5}]]
    again, _, redelivered = advance(staged, stage, state)
    assert redelivered
    assert again.features["user_events_5m"] == 7.0
    assert again.features["user_mean_price_5m"] == 3.5


def test_remembered_values_that_do_not_fit_the_stage_are_not_reused(spec: PipelineSpec) -> None:
    stage = plan_stages(spec)[0]
    staged = admit(raw_event("e-1", 0), spec, NOW + timedelta(minutes=1), Limits())
    _, state, _ = advance(staged, stage, None)
    state["recent"] = [["e-1", [1.0]]]  # written by a spec with other aggregates
    _, after, redelivered = advance(staged, stage, state)
    assert not redelivered
    assert after["seq"] == 2
