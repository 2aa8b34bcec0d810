"""Synthetic streams with known change points: where the concept changes, how labels come back."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from schemas.events import Event, Label
from services.cli.pipeline_in_process import VirtualClock
from services.cli.synth_streams import (
    STAGGER_NAMES,
    TIMINGS,
    StreamRecipe,
    SynthScenario,
    _concept_probability,
    default_recipes,
    fields_of,
    raw_stream,
    spec_for,
)
from services.common.runtime import StopSignal
from services.producer.stream import stream_scenario

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def stagger_function(number: int, x: Mapping[str, object]) -> int:
    """STAGGER's three concepts (River's definitions), on the named attributes."""
    if number == 0:
        return int(x["size"] == "small" and x["color"] == "red")
    if number == 1:
        return int(x["color"] == "green" or x["shape"] == "circle")
    return int(x["size"] in ("medium", "large"))


def test_an_abrupt_switch_labels_every_event_by_the_concept_of_its_segment() -> None:
    recipe = StreamRecipe("s", "STAGGER", "abrupt", 900, (0, 1, 2), (300, 600))
    for index, (x, y) in enumerate(raw_stream(recipe, seed=5)):
        concept = 0 if index < 300 else (1 if index < 600 else 2)
        assert y == stagger_function(concept, x), index


def test_a_gradual_change_mixes_along_river_s_concept_drift_ramp() -> None:
    assert _concept_probability(99, 100, 1) == 0.0
    assert _concept_probability(100, 100, 1) == 1.0
    assert _concept_probability(150, 100, 100) == pytest.approx(0.5)
    assert _concept_probability(100, 100, 100) == pytest.approx(0.119, abs=0.001)
    assert _concept_probability(200, 100, 100) == pytest.approx(0.881, abs=0.001)
    recipe = StreamRecipe("g", "STAGGER", "gradual", 3000, (0, 2), (1000,), width=1000)
    pairs = list(raw_stream(recipe, seed=1))
    # Events the two concepts label differently tell which one labelled them.
    new = [y == stagger_function(2, x) != stagger_function(0, x) for x, y in pairs]
    old = [y == stagger_function(0, x) != stagger_function(2, x) for x, y in pairs]
    assert sum(new[:300]) <= 2  # before the ramp (p < 1%)
    assert sum(new[1000:1300]) < sum(new[1700:2000])  # rising along it
    assert sum(old[2700:]) <= 2  # after it (p > 99%)


def test_hyperplane_moves_only_from_its_change_on() -> None:
    still = StreamRecipe("h", "Hyperplane", "none", 4000)
    moving = StreamRecipe("h", "Hyperplane", "incremental", 4000, changes=(2000,))
    a, b = list(raw_stream(still, seed=3)), list(raw_stream(moving, seed=3))
    assert [x for x, _ in a] == [x for x, _ in b]  # the inputs never change
    assert [y for _, y in a[:2001]] == [y for _, y in b[:2001]]
    assert [y for _, y in a[2001:]] != [y for _, y in b[2001:]]


def test_a_seed_gives_the_same_stream_and_another_seed_another() -> None:
    recipe = StreamRecipe("s", "SEA", "abrupt", 500, (1, 2), (250,))
    assert list(raw_stream(recipe, 4)) == list(raw_stream(recipe, 4))
    assert list(raw_stream(recipe, 4)) != list(raw_stream(recipe, 5))


@pytest.mark.parametrize("generator", ["SEA", "Agrawal", "Hyperplane", "STAGGER"])
def test_every_feature_fits_the_spec_field_made_for_it(generator: str) -> None:
    recipe = StreamRecipe("f", generator, "none", 300)  # type: ignore[arg-type]
    fields = fields_of(recipe.generator)
    for x, y in raw_stream(recipe, seed=2):
        assert set(x) == set(fields)
        assert y in (0, 1)
        for name, value in x.items():
            spec = fields[name]
            if spec.type == "categorical":
                assert spec.values is not None and value in spec.values
            else:
                assert isinstance(value, int | float)
                assert spec.min is None or spec.min <= value
                assert spec.max is None or value <= spec.max


def test_recipes_refuse_changes_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="ordered change"):
        StreamRecipe("x", "SEA", "abrupt", 100, (1, 2, 3), (50,))
    with pytest.raises(ValueError, match="inside the stream"):
        StreamRecipe("x", "SEA", "abrupt", 100, (1, 2), (100,))
    assert STAGGER_NAMES["size"][0] == "small"


def test_the_ground_truth_has_a_concept_drift_point_at_each_change() -> None:
    recipe = StreamRecipe("sea-gradual", "SEA", "gradual", 3000, (1, 2, 3), (1000, 2000),
                          width=100)
    truth = SynthScenario(recipe, TIMINGS["immediate"], 1).ground_truth(START, 1.0)
    assert [(d.index, d.end_index, d.drift_kind, d.transition) for d in truth.drift_points] == [
        (1000, 1100, "concept", "gradual"), (2000, 2100, "concept", "gradual")]
    spans = [(p.kind, p.start_index, p.end_index) for p in truth.phases]
    assert spans == [("stationary", 0, 1000), ("concept_drift", 1000, 1100),
                     ("stationary", 1100, 2000), ("concept_drift", 2000, 2100),
                     ("stationary", 2100, 3000)]
    stationary = SynthScenario(default_recipes(0.01)[0], TIMINGS["delayed"], 1)
    assert stationary.ground_truth(START, 1.0).drift_points == ()


@dataclass
class Recorder:
    """A publisher that records the order of events and labels."""

    log: list[tuple[str, str]] = field(default_factory=list)

    @property
    def events_published(self) -> int:
        return sum(kind == "event" for kind, _ in self.log)

    @property
    def labels_published(self) -> int:
        return sum(kind == "label" for kind, _ in self.log)

    def publish_event(self, event: Event) -> None:
        self.log.append(("event", event.event_id))

    def publish_label(self, label: Label) -> None:
        self.log.append(("label", label.event_id))

    def flush(self) -> None:
        """Nothing buffered."""


def _published(timing: str, events: int = 1200) -> tuple[list[tuple[str, str]], list[int]]:
    recipe = StreamRecipe("t", "STAGGER", "none", events, (2,))
    recorder = Recorder()
    stream_scenario(SynthScenario(recipe, TIMINGS[timing], 1), recorder, 1.0, StopSignal(),
                    start_time=START, clock=VirtualClock(START))
    return recorder.log, [y for _, y in raw_stream(recipe, 1)]


def _event_number(event_id: str) -> int:
    return int(event_id.rsplit("-", 1)[1])


def test_immediate_labels_come_before_the_next_event() -> None:
    log, _ = _published("immediate", 300)
    expected = list(itertools.chain.from_iterable(
        [("event", f"t-1-{i}"), ("label", f"t-1-{i}")] for i in range(300)))
    assert log == expected


def test_delayed_labels_come_a_fixed_number_of_events_later() -> None:
    log, _ = _published("delayed")
    delay = int(TIMINGS["delayed"].delay)
    seen = 0
    for kind, event_id in log:
        if kind == "event":
            seen += 1
        else:  # due with event i + delay (published just before it), or when the events end
            assert seen == min(_event_number(event_id) + delay, 1200)
    assert sum(kind == "label" for kind, _ in log) == 1200


def test_implicit_timing_sends_positives_soon_and_negatives_never() -> None:
    log, labels = _published("implicit")
    timing = TIMINGS["implicit"]
    sent = {event_id for kind, event_id in log if kind == "label"}
    assert sent == {f"t-1-{i}" for i, y in enumerate(labels) if y == 1}
    seen = 0
    for kind, event_id in log:
        seen += kind == "event"
        if kind == "label" and seen < 1200:  # the last ones come when the events end
            assert 1 <= seen - _event_number(event_id) <= timing.delay
    spec = spec_for(StreamRecipe("t", "STAGGER", "none", 10), timing)
    assert (spec.label.on_timeout, spec.label.feedback_window_seconds) == ("negative",
                                                                           timing.window)
    assert timing.delay < timing.window  # every positive comes inside its window
