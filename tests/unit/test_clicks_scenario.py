"""The clicks scenario: determinism, valid events, each kind of drift, natural labels."""

from __future__ import annotations

import itertools
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.codec import encode
from schemas.spec import load_spec
from services.features.validation import Limits, validate_event
from services.producer.scenarios import ClicksScenario, LabelledEvent, NaturalLabels
from services.producer.scenarios.clicks import CLICKS_FEEDBACK_WINDOW_SECONDS
from services.producer.scenarios.labels import (
    ExponentialDelay,
    LognormalDelay,
    UniformDelay,
    parse_label_delay,
)
from services.producer.scenarios.timeline import Timeline, load_timeline, parse_timeline
from services.producer.scenarios.world import Concept

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
INTERVAL = 0.02


def stream(scenario: ClicksScenario, count: int) -> list[LabelledEvent]:
    return list(itertools.islice(scenario.events(START, INTERVAL), count))


def two_phases(second: dict[str, Any], events: int = 8000) -> Timeline:
    return parse_timeline({"phases": [
        {"name": "before", "kind": "stationary", "events": events},
        {"name": "after", "events": events, **second},
    ]})


def fields(labelled: LabelledEvent) -> tuple[Any, int, float, int]:
    f = labelled.event.fields
    assert isinstance(f["position"], int) and isinstance(f["price"], float)
    assert isinstance(f["hour"], int)
    return f["device"], f["position"], f["price"], f["hour"]


def click_rate(events: list[LabelledEvent]) -> float:
    return sum(int(e.label) for e in events) / len(events)


def expected_rate(events: list[LabelledEvent], concept: Concept) -> float:
    """The mean click probability of these inputs under ``concept``."""
    return statistics.fmean(concept.probability(*fields(e)) for e in events)


def test_the_same_seed_gives_the_same_stream_and_another_seed_another() -> None:
    timeline = load_timeline("clicks-drift")
    first = stream(ClicksScenario(seed=11, timeline=timeline), 3000)
    assert first == stream(ClicksScenario(seed=11, timeline=timeline), 3000)
    other = stream(ClicksScenario(seed=12, timeline=timeline), 3000)
    assert [e.event.fields for e in other] != [e.event.fields for e in first]
    assert [e.label for e in other] != [e.label for e in first]


def test_label_options_do_not_change_the_events() -> None:
    plain = stream(ClicksScenario(seed=4), 2000)
    lossy = stream(ClicksScenario(seed=4, explicit_negatives=True, labels=NaturalLabels(
        delay=ExponentialDelay(mean=5.0), late_share=0.2, lost_share=0.2)), 2000)
    assert [(e.event, e.label) for e in plain] == [(e.event, e.label) for e in lossy]


def test_every_event_is_valid_for_the_clicks_spec() -> None:
    spec = load_spec("clicks")
    builtin = load_timeline("clicks-drift")
    scaled = [phase.model_copy(update={"events": phase.events // 20, "width": phase.width // 20})
              for phase in builtin.phases]
    extreme = {"name": "luxury", "kind": "covariate_shift", "events": 500, "price_scale": 100.0,
               "device_mix": {"tablet": 1.0}}
    timeline = parse_timeline({"phases": [p.model_dump() for p in scaled] + [extreme]})
    limits = Limits(max_past=timedelta(days=3650), max_future=timedelta(days=3650))
    events = stream(ClicksScenario(seed=2, timeline=timeline), timeline.total_events)
    for labelled in events:
        assert validate_event(encode(labelled.event), spec, START, limits) == labelled.event
    assert max(fields(e)[2] for e in events[-500:]) > 5000  # the price cap was exercised


def test_the_default_is_stationary_and_learnable() -> None:
    events = stream(ClicksScenario(seed=11), 20_000)
    halves = click_rate(events[:10_000]), click_rate(events[10_000:])
    assert 0.30 < halves[0] < 0.42 and abs(halves[0] - halves[1]) < 0.03
    assert click_rate(events) == pytest.approx(expected_rate(events, Concept()), abs=0.015)


def test_the_feedback_window_is_the_clicks_specs() -> None:
    assert load_spec("clicks").label.feedback_window_seconds == CLICKS_FEEDBACK_WINDOW_SECONDS


def test_covariate_shift_changes_the_inputs_not_who_clicks() -> None:
    timeline = two_phases({"kind": "covariate_shift",
                           "device_mix": {"mobile": 0.2, "desktop": 0.3, "tablet": 0.5}})
    events = stream(ClicksScenario(seed=5, timeline=timeline), 16_000)
    before, after = events[:8000], events[8000:]

    def share(part: list[LabelledEvent], device: str) -> float:
        return sum(1 for e in part if e.event.fields["device"] == device) / len(part)

    assert share(before, "mobile") == pytest.approx(0.55, abs=0.02)
    assert share(after, "mobile") == pytest.approx(0.20, abs=0.02)
    assert share(after, "tablet") - share(before, "tablet") > 0.3
    for part in (before, after):  # the same hidden model explains the clicks in both phases
        assert click_rate(part) == pytest.approx(expected_rate(part, Concept()), abs=0.02)
    assert abs(click_rate(after) - click_rate(before)) > 0.05  # the mix alone moved the rate


def test_a_price_scale_makes_items_dearer() -> None:
    events = stream(ClicksScenario(seed=5, timeline=two_phases(
        {"kind": "covariate_shift", "price_scale": 3.0})), 16_000)
    prices = [statistics.median(fields(e)[2] for e in part)
              for part in (events[:8000], events[8000:])]
    assert prices[1] / prices[0] == pytest.approx(3.0, rel=0.1)


def test_label_shift_moves_the_click_rate_by_the_configured_amount() -> None:
    events = stream(ClicksScenario(seed=6, timeline=two_phases(
        {"kind": "label_shift", "intercept_shift": -1.0})), 16_000)
    before, after = events[:8000], events[8000:]
    shifted = Concept(intercept=Concept().intercept - 1.0)
    assert click_rate(after) == pytest.approx(expected_rate(after, shifted), abs=0.02)
    expected_change = expected_rate(after, shifted) - expected_rate(before, Concept())
    assert expected_change < -0.1
    assert click_rate(after) - click_rate(before) == pytest.approx(expected_change, abs=0.025)


def top_and_bottom(events: list[LabelledEvent]) -> tuple[float, float]:
    top = [e for e in events if fields(e)[1] <= 3]
    bottom = [e for e in events if fields(e)[1] >= 8]
    return click_rate(top), click_rate(bottom)


def test_abrupt_concept_drift_flips_which_positions_get_clicked() -> None:
    events = stream(ClicksScenario(seed=8, timeline=two_phases(
        {"kind": "concept_drift", "concept": {"position": 0.3, "intercept": -1.0}})),
        16_000)
    top, bottom = top_and_bottom(events[:8000])
    assert top - bottom > 0.3
    top, bottom = top_and_bottom(events[8000:])
    assert bottom - top > 0.2
    top, bottom = top_and_bottom(events[8000:8500])  # abrupt: already flipped right away
    assert bottom > top


def test_gradual_concept_drift_mixes_old_into_new_over_its_width() -> None:
    width = 9000
    timeline = two_phases({"kind": "concept_drift", "transition": "gradual", "width": width,
                           "mixing": "sigmoid", "concept": {"position": 0.3}}, events=12_000)
    events = stream(ClicksScenario(seed=9, timeline=timeline), 24_000)
    ramp = timeline.phases[1]
    old, new = timeline.worlds()[1]
    rates = []
    for begin in range(0, width, 1500):
        window = events[12_000 + begin:12_000 + begin + 1500]
        bottom = [(offset, e) for offset, e in enumerate(window, start=begin)
                  if fields(e)[1] >= 8]
        observed = click_rate([e for _, e in bottom])
        mixed = statistics.fmean(
            ramp.weight(offset) * new.concept.probability(*fields(e))
            + (1 - ramp.weight(offset)) * old.concept.probability(*fields(e))
            for offset, e in bottom
        )
        assert observed == pytest.approx(mixed, abs=0.08)
        rates.append(observed)
    _, bottom_before = top_and_bottom(events[:12_000])
    _, bottom_after = top_and_bottom(events[12_000 + width:])
    assert rates[0] == pytest.approx(bottom_before, abs=0.06)
    assert rates[-1] == pytest.approx(bottom_after, abs=0.08)
    assert rates[0] < rates[2] < rates[-1]


def label_fates(events: list[LabelledEvent]) -> tuple[int, int, int, list[float]]:
    """(clicks, lost, late, on-time delays) among the clicks."""
    clicks = [e for e in events if e.label]
    lost = sum(1 for e in clicks if e.label_delay_seconds is None)
    delays = [e.label_delay_seconds for e in clicks if e.label_delay_seconds is not None]
    late = sum(1 for d in delays if d > CLICKS_FEEDBACK_WINDOW_SECONDS)
    return len(clicks), lost, late, [d for d in delays if d < CLICKS_FEEDBACK_WINDOW_SECONDS]


def test_late_and_lost_shares_are_honoured() -> None:
    labels = NaturalLabels(late_share=0.1, lost_share=0.05)
    events = stream(ClicksScenario(seed=10, labels=labels), 20_000)
    clicks, lost, late, on_time = label_fates(events)
    assert clicks > 5000
    assert lost / clicks == pytest.approx(0.05, abs=0.012)
    assert late / clicks == pytest.approx(0.10, abs=0.015)
    assert lost + late + len(on_time) == clicks
    assert all(0.2 <= d <= 3.0 for d in on_time)
    assert all(e.label_delay_seconds is None for e in events if not e.label)


def test_explicit_negatives_are_sent_and_share_the_fates() -> None:
    labels = NaturalLabels(lost_share=0.2)
    events = stream(ClicksScenario(seed=10, explicit_negatives=True, labels=labels), 20_000)
    negatives = [e for e in events if not e.label]
    never = sum(1 for e in negatives if e.label_delay_seconds is None)
    assert never / len(negatives) == pytest.approx(0.2, abs=0.02)


@pytest.mark.parametrize(("delay", "median"), [
    (ExponentialDelay(mean=4.0), 4.0 * 0.6931),
    (LognormalDelay(median=2.0, sigma=0.5), 2.0),
    (UniformDelay(low=1.0, high=5.0), 3.0),
    (ExponentialDelay(mean=60.0), None),  # mostly beyond the window: truncated to it
])
def test_on_time_delays_follow_the_distribution_inside_the_window(
    delay: ExponentialDelay | LognormalDelay | UniformDelay, median: float | None
) -> None:
    events = stream(ClicksScenario(seed=3, labels=NaturalLabels(delay=delay)), 12_000)
    clicks, lost, late, on_time = label_fates(events)
    assert lost == late == 0 and len(on_time) == clicks
    assert all(0 <= d < CLICKS_FEEDBACK_WINDOW_SECONDS for d in on_time)
    if median is not None:
        assert statistics.median(on_time) == pytest.approx(median, rel=0.1)


def test_a_delay_that_never_fits_the_window_is_refused() -> None:
    scenario = ClicksScenario(labels=NaturalLabels(delay=UniformDelay(low=40, high=50)))
    with pytest.raises(ValueError, match="inside the 30s feedback window"):
        next(scenario.events(START, INTERVAL))


def test_label_delays_parse_from_text() -> None:
    assert parse_label_delay("uniform:0.5:2") == UniformDelay(low=0.5, high=2.0)
    assert parse_label_delay("exponential:3") == ExponentialDelay(mean=3.0)
    assert parse_label_delay("lognormal:1.5:0.4") == LognormalDelay(median=1.5, sigma=0.4)
    for bad in ("gamma:1", "exponential", "uniform:1", "exponential:x"):
        with pytest.raises(ValueError, match="label delay"):
            parse_label_delay(bad)
    with pytest.raises(ValueError, match="greater than"):
        parse_label_delay("uniform:3:1")


def test_shares_that_add_up_to_more_than_everything_are_refused() -> None:
    with pytest.raises(ValueError, match="more than 1"):
        NaturalLabels(late_share=0.6, lost_share=0.5)
