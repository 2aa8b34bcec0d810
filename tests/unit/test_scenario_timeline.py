"""Drift timelines: loading and validation, transitions, and the ground truth of a run."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.truth import GroundTruth
from services.producer.scenarios import ClicksScenario
from services.producer.scenarios.timeline import (
    Phase,
    Timeline,
    TimelineError,
    builtin_timelines,
    load_timeline,
    parse_timeline,
)
from services.producer.scenarios.world import World

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def phase(**fields: Any) -> dict[str, Any]:
    return {"name": "p", "kind": "stationary", "events": 100, **fields}


def problem(document: dict[str, Any]) -> str:
    with pytest.raises(TimelineError) as raised:
        parse_timeline(document, "mine.toml")
    return str(raised.value)


def test_the_builtin_timeline_has_one_change_of_each_kind() -> None:
    assert "clicks-drift" in builtin_timelines()
    timeline = load_timeline("clicks-drift")
    assert timeline.name == "clicks-drift"
    assert [(p.kind, p.transition, p.events) for p in timeline.phases] == [
        ("stationary", "abrupt", 20_000),
        ("covariate_shift", "abrupt", 10_000),
        ("label_shift", "abrupt", 10_000),
        ("concept_drift", "abrupt", 20_000),
        ("concept_drift", "gradual", 20_000),
    ]
    assert timeline.starts() == [0, 20_000, 30_000, 40_000, 60_000]
    assert timeline.total_events == 80_000


def test_a_timeline_file_is_read_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "short.toml"
    path.write_text('[[phases]]\nname = "a"\nkind = "stationary"\nevents = 10\n\n'
                    '[[phases]]\nname = "b"\nkind = "label_shift"\nevents = 5\n'
                    'intercept_shift = 0.5\n')
    timeline = load_timeline(str(path))
    assert timeline.name == "short"
    assert [p.name for p in timeline.phases] == ["a", "b"]


def test_ground_truth_matches_the_configured_timeline() -> None:
    timeline = load_timeline("clicks-drift")
    truth = ClicksScenario(seed=3, timeline=timeline).ground_truth(START, 0.02)
    assert truth.timeline == "clicks-drift" and truth.seed == 3 and truth.scenario == "clicks"
    assert truth.total_events == 80_000
    assert [(p.index, p.phase, p.kind, p.drift_kind, p.transition, p.width)
            for p in truth.drift_points] == [
        (20_000, "tablet-season", "covariate_shift", "covariate", "abrupt", 0),
        (30_000, "fewer-clicks", "label_shift", "label", "abrupt", 0),
        (40_000, "layout-change", "concept_drift", "concept", "abrupt", 0),
        (60_000, "demand-surge", "concept_drift", "concept", "gradual", 5_000),
    ]
    for point in truth.drift_points:
        assert point.event_time == START + timedelta(seconds=point.index * 0.02)
        assert point.end_index == point.index + point.width
        assert point.end_time == START + timedelta(seconds=point.end_index * 0.02)
    assert truth.drift_points[-1].mixing == "sigmoid"
    assert [span.start_index for span in truth.phases] == [0, 20_000, 30_000, 40_000, 60_000]
    assert [span.end_index for span in truth.phases] == [20_000, 30_000, 40_000, 60_000, 80_000]


def test_ground_truth_round_trips_through_json() -> None:
    truth = ClicksScenario(timeline=load_timeline("clicks-drift")).ground_truth(START, 0.5)
    assert GroundTruth.model_validate_json(truth.model_dump_json()) == truth


def test_a_stationary_scenario_has_no_drift_points() -> None:
    truth = ClicksScenario(seed=5).ground_truth(START, 0.1)
    assert truth.drift_points == () and truth.timeline is None and truth.total_events is None


def test_changes_carry_over_from_phase_to_phase() -> None:
    timeline = parse_timeline({"phases": [
        phase(name="a"),
        phase(name="b", kind="covariate_shift", device_mix={"tablet": 1.0}),
        phase(name="c", kind="label_shift", intercept_shift=-1.0),
        phase(name="d", kind="concept_drift", concept={"device": {"mobile": 0.1}, "price": 0}),
    ]})
    worlds = [new for _, new in timeline.worlds()]
    base = World()
    assert worlds[0] == base
    assert worlds[1].mix.device_mix == {"mobile": 0.0, "desktop": 0.0, "tablet": 1.0}
    assert worlds[1].mix.price_scale == base.mix.price_scale
    assert worlds[2].mix == worlds[1].mix
    assert worlds[2].concept.intercept == pytest.approx(base.concept.intercept - 1.0)
    assert worlds[3].concept.intercept == worlds[2].concept.intercept
    assert worlds[3].concept.device == {"mobile": 0.1, "desktop": 0.0, "tablet": -0.8}
    assert worlds[3].concept.price == 0.0


@pytest.mark.parametrize("mixing", ["sigmoid", "linear"])
def test_a_gradual_weight_rises_from_old_to_new_over_its_width(mixing: str) -> None:
    ramp = Phase(name="r", kind="concept_drift", events=1000, transition="gradual", width=400,
                 mixing=mixing, concept={"price": 0.0})
    weights = [ramp.weight(offset) for offset in range(0, 1000)]
    assert weights[0] == 0.0
    assert all(later >= earlier for earlier, later in itertools.pairwise(weights))
    assert weights[200] == pytest.approx(0.5)
    assert all(weight == 1.0 for weight in weights[400:])
    if mixing == "linear":
        assert weights[100] == pytest.approx(0.25)
    else:
        assert weights[100] < 0.15 and weights[300] > 0.85


def test_an_abrupt_change_holds_from_its_first_event() -> None:
    jump = Phase(name="j", kind="label_shift", events=10, intercept_shift=1.0)
    assert [jump.weight(offset) for offset in range(3)] == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(("document", "expected"), [
    ({"phases": [phase(kind="drift")]}, "phase 1 'p', kind"),
    ({"phases": [phase(), phase(name="s", kind="concept_drift", transition="gradual",
                               width=500, concept={"price": 0})]},
     "phase 2 's': width (500) is longer than the phase (100 events)"),
    ({"phases": [phase(), phase(name="g", kind="concept_drift", transition="gradual",
                               concept={"price": 0})]},
     "phase 2 'g': a gradual transition needs width"),
    ({"phases": [phase(kind="covariate_shift", intercept_shift=1.0)]},
     "'intercept_shift' does not belong in a covariate_shift phase"),
    ({"phases": [phase(kind="label_shift")]}, "a label_shift phase needs intercept_shift"),
    ({"phases": [phase(kind="concept_drift", concept={})]}, "concept changes nothing"),
    ({"phases": [phase(), phase()]}, "phase names must be unique"),
    ({"phases": []}, "phases"),
    ({"phases": [phase(evnets=3)]}, "phase 1 'p', evnets: Extra inputs are not permitted"),
    ({"phases": [phase(kind="covariate_shift", device_mix={"mobile": -1})]},
     "device weights must be >= 0"),
    ({"phases": [phase(kind="covariate_shift", device_mix={"watch": 1})]}, "device_mix.watch"),
    ({"phases": [phase(width=3)]}, "width is only for gradual transitions"),
    ({"phases": [phase(kind="label_shift", intercept_shift=1, transition="gradual", width=5)]},
     "the first phase ('p') has nothing to turn from gradually"),
])
def test_bad_timelines_say_where_and_what(document: dict[str, Any], expected: str) -> None:
    message = problem(document)
    assert message.startswith("mine.toml: invalid timeline")
    assert expected in message


def test_a_file_that_is_not_toml_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[[phases]\n")
    with pytest.raises(TimelineError, match=r"broken\.toml: not valid TOML"):
        load_timeline(str(path))


def test_an_unknown_timeline_lists_the_builtin_ones() -> None:
    with pytest.raises(TimelineError, match=r"no timeline 'nope'.*clicks-drift"):
        load_timeline("nope")


def test_timelines_are_frozen() -> None:
    timeline = Timeline(phases=(Phase(name="a", kind="stationary", events=1),))
    with pytest.raises(ValueError, match="frozen"):
        timeline.phases[0].events = 2  # type: ignore[misc]
