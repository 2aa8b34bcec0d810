"""``streamml backtest``'s replay and comparison (pure logic; the real-broker test reads topics)."""

from __future__ import annotations

import pytest

from schemas.predictions import Outcome
from schemas.spec import PipelineSpec, load_spec
from services.cli.backtest import render
from services.cli.backtest_replay import compare, mcnemar_p, paired_mean_test, replay
from tests.backtest_stream import recording


def elec2_with(estimator: str) -> PipelineSpec:
    spec = load_spec("elec2")
    champion = spec.models.champion.model_copy(update={"estimator": estimator})
    return spec.model_copy(update={"models": spec.models.model_copy(
        update={"champion": champion})})


def test_the_same_recording_gives_the_same_figures() -> None:
    events, labels = recording()
    first, second = replay(load_spec("elec2"), events, labels), replay(
        load_spec("elec2"), events, labels)
    assert [o.model_dump() for o in first.outcomes] == [o.model_dump() for o in second.outcomes]
    assert len({o.event_id for o in first.outcomes}) == len(events)  # every window closed


def test_a_spec_replayed_against_its_own_outcomes_differs_in_nothing() -> None:
    events, labels = recording()
    own = replay(load_spec("elec2"), events, labels)
    comparison = compare(own.outcomes, own.alerts, own)
    assert comparison.events == len(events)
    assert comparison.recorded.accuracy == comparison.candidate.accuracy
    assert comparison.statistic == {"only_recorded_right": 0, "only_candidate_right": 0}
    assert comparison.p_value is None


def test_another_estimator_is_compared_on_the_events_both_answered() -> None:
    events, labels = recording()
    recorded = replay(load_spec("elec2"), events, labels)
    candidate = replay(elec2_with("tree.HoeffdingTreeClassifier"), events, labels)
    comparison = compare(recorded.outcomes, recorded.alerts, candidate)
    both = comparison.candidate.scored
    assert both == comparison.recorded.scored <= comparison.candidate.judged
    assert comparison.recorded.accuracy != comparison.candidate.accuracy
    pairs = comparison.statistic
    assert pairs["only_recorded_right"] + pairs["only_candidate_right"] > 0
    text = render(comparison)
    assert "| recorded |" in text and "| candidate |" in text and "McNemar" in text


def test_outcomes_of_the_recorded_champion_only_are_compared() -> None:
    events, labels = recording(200)
    own = replay(load_spec("elec2"), events, labels)
    challengers = [as_challenger(o) for o in own.outcomes]
    comparison = compare(own.outcomes + challengers, [], own)
    assert comparison.events == 200


def as_challenger(outcome: Outcome) -> Outcome:
    return outcome.model_copy(update={"model": "other", "role": "challenger",
                                      "correct": not outcome.correct})


def test_mcnemar_is_exact_for_few_discordant_pairs_and_symmetric() -> None:
    assert mcnemar_p(0, 0) is None
    assert mcnemar_p(3, 3) == pytest.approx(1.0)
    assert mcnemar_p(0, 6) == pytest.approx(2 / 64)  # all six one way: 2 * 0.5**6
    assert mcnemar_p(10, 30) == pytest.approx(mcnemar_p(30, 10))
    assert mcnemar_p(150, 250) is not None and mcnemar_p(150, 250) < 1e-5  # type: ignore[operator]


def test_the_paired_mean_test_finds_a_consistent_difference() -> None:
    mean, p_value = paired_mean_test([0.5 + 0.01 * (n % 7) for n in range(100)])
    assert mean == pytest.approx(0.53, abs=0.01)
    assert p_value is not None and p_value < 1e-10
    assert paired_mean_test([0.0, 0.0, 0.0]) == (0.0, None)
