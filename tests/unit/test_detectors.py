"""Concept-drift monitors on synthetic error streams with a known change point."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from schemas.spec import DetectorSpec
from services.drift.detectors import Detection, ErrorStreamMonitor

CHANGE_AT = 2000
DETECTION_BOUND = 300


def errors(rng: random.Random, rate: float, count: int) -> list[float]:
    return [1.0 if rng.random() < rate else 0.0 for _ in range(count)]


def feed(monitor: ErrorStreamMonitor, stream: list[float]) -> list[Detection]:
    return [d for d in (monitor.update(error) for error in stream) if d is not None]


def abrupt(seed: int, change_at: int = CHANGE_AT) -> list[float]:
    """Error rate 0.1, then 0.6 from observation ``change_at + 1`` on."""
    rng = random.Random(seed)
    return errors(rng, 0.1, change_at) + errors(rng, 0.6, 1000)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_adwin_detects_an_abrupt_error_rise_within_the_bound(seed: int) -> None:
    monitor = ErrorStreamMonitor(DetectorSpec(detector="ADWIN", params={"delta": 0.002}))
    detections = feed(monitor, abrupt(seed))
    assert detections, "the change was not detected"
    first = detections[0]
    assert CHANGE_AT < first.position <= CHANGE_AT + DETECTION_BOUND
    # ADWIN reports the error-rate difference at its cut against its cut threshold epsilon.
    assert 0.0 < first.threshold < first.statistic < 1.0
    assert first.statistic > 0.1


def test_adwin_reports_the_difference_at_its_cut_and_the_bound_it_crossed() -> None:
    monitor = ErrorStreamMonitor(DetectorSpec(detector="ADWIN", cooldown_observations=0))
    [first, *_] = feed(monitor, [0.0] * 3000 + [1.0] * 200)
    assert 3000 < first.position <= 3064  # ADWIN checks every 32 observations
    assert first.statistic > 0.9  # all errors after the cut, none before
    assert 0.0 < first.threshold < first.statistic


def test_every_adwin_detection_reports_a_statistic_beyond_its_threshold() -> None:
    detections: list[Detection] = []
    for seed in range(10):
        for before, after in ((0.1, 0.6), (0.1, 0.2), (0.3, 0.1)):
            rng = random.Random(seed)
            stream = errors(rng, before, 2000) + errors(rng, after, 4000)
            spec = DetectorSpec(cooldown_observations=0, direction="both")
            detections += feed(ErrorStreamMonitor(spec), stream)
    assert len(detections) >= 30
    assert all(0.0 < d.threshold < d.statistic <= 1.0 for d in detections)


@pytest.mark.parametrize("seed", [0, 1])
def test_adwin_raises_no_alarm_on_a_stationary_stream(seed: int) -> None:
    monitor = ErrorStreamMonitor(DetectorSpec(detector="ADWIN", params={"delta": 0.002}))
    assert feed(monitor, errors(random.Random(100 + seed), 0.1, 20_000)) == []
    assert monitor.position == 20_000


@pytest.mark.parametrize("detector", ["PageHinkley", "DDM", "KSWIN"])
def test_other_detectors_notice_the_change(detector: str) -> None:
    change_at, found = 600, 0
    for seed in range(5):
        spec = DetectorSpec(detector=detector, cooldown_observations=0)
        detections = feed(ErrorStreamMonitor(spec), abrupt(seed, change_at))
        found += any(change_at < d.position <= change_at + DETECTION_BOUND for d in detections)
    assert found >= 4


@pytest.mark.parametrize("detector", ["PageHinkley", "DDM"])
def test_a_detection_reports_a_statistic_beyond_its_threshold(detector: str) -> None:
    spec = DetectorSpec(detector=detector)
    detections = feed(ErrorStreamMonitor(spec), abrupt(0))
    assert detections
    assert all(d.statistic > d.threshold for d in detections)


def test_kswin_reports_a_p_value_at_or_below_alpha() -> None:
    spec = DetectorSpec(detector="KSWIN", params={"alpha": 0.005})
    detections = feed(ErrorStreamMonitor(spec), abrupt(1, change_at=600))
    assert detections
    assert all(d.threshold == 0.005 and d.statistic <= d.threshold for d in detections)


def test_kswin_is_seeded_so_replays_give_the_same_alerts() -> None:
    stream = abrupt(2, change_at=600)
    runs = [feed(ErrorStreamMonitor(DetectorSpec(detector="KSWIN")), stream) for _ in range(2)]
    assert runs[0] == runs[1]
    assert runs[0]


def flapping(seed: int) -> list[float]:
    """Error rate alternating between 0.05 and 0.9 every 150 observations."""
    rng = random.Random(seed)
    stream: list[float] = []
    for block in range(40):
        stream += errors(rng, 0.9 if block % 2 else 0.05, 150)
    return stream


def test_cooldown_suppresses_repeated_alerts() -> None:
    stream = flapping(9)
    eager = feed(ErrorStreamMonitor(DetectorSpec(cooldown_observations=0)), stream)
    calm = feed(ErrorStreamMonitor(DetectorSpec(cooldown_observations=1000)), stream)
    # Without a cooldown every rise alerts, once, inside its block (falls never do).
    assert [d.position // 150 for d in eager] == list(range(1, 40, 2))
    assert 0 < len(calm) < len(eager)
    gaps = [b.position - a.position for a, b in pairwise(calm)]
    assert all(gap >= 1000 for gap in gaps)
    assert len(calm) >= len(stream) // 1150  # alerts resume once each cooldown ends


def test_positions_count_every_observation() -> None:
    monitor = ErrorStreamMonitor(DetectorSpec())
    feed(monitor, [0.0] * 123)
    assert monitor.position == 123


def falling(seed: int, change_at: int = CHANGE_AT) -> list[float]:
    """Error rate 0.6, then 0.1 from observation ``change_at + 1`` on: the model got better."""
    rng = random.Random(seed)
    return errors(rng, 0.6, change_at) + errors(rng, 0.1, 3000)


ALL_DETECTORS = ["ADWIN", "PageHinkley", "DDM", "KSWIN"]


@pytest.mark.parametrize("detector", ALL_DETECTORS)
def test_a_falling_error_rate_raises_no_alert_by_default(detector: str) -> None:
    for seed in range(3):
        spec = DetectorSpec(detector=detector, cooldown_observations=0)
        assert spec.direction == "up"
        detections = feed(ErrorStreamMonitor(spec), falling(seed))
        assert [d for d in detections if d.position > CHANGE_AT] == []


@pytest.mark.parametrize("detector", ["ADWIN", "PageHinkley", "KSWIN"])
def test_direction_both_also_alerts_on_a_fall(detector: str) -> None:
    found = 0
    for seed in range(3):
        spec = DetectorSpec(detector=detector, cooldown_observations=0, direction="both")
        detections = feed(ErrorStreamMonitor(spec), falling(seed))
        found += any(CHANGE_AT < d.position <= CHANGE_AT + DETECTION_BOUND for d in detections)
    assert found == 3


@pytest.mark.parametrize("detector", ALL_DETECTORS)
def test_a_rise_after_a_fall_is_still_detected_within_the_bound(detector: str) -> None:
    """0.6 -> 0.1 (no alert), then 0.1 -> 0.6 (alert): a dropped fall does not blind it."""
    for seed in range(3):
        rng = random.Random(seed)
        stream = errors(rng, 0.6, 1000) + errors(rng, 0.1, 2000) + errors(rng, 0.6, 1000)
        spec = DetectorSpec(detector=detector, cooldown_observations=0)
        detections = feed(ErrorStreamMonitor(spec), stream)
        assert detections, f"seed {seed}: the rise was not detected"
        assert all(d.position > 3000 for d in detections)
        assert detections[0].position <= 3000 + DETECTION_BOUND


def test_page_hinkley_runs_in_river_mode_up_unless_told_both() -> None:
    from services.drift.detectors import build_detector

    assert build_detector(DetectorSpec(detector="PageHinkley")).mode == "up"
    assert build_detector(DetectorSpec(detector="PageHinkley", direction="both")).mode == "both"


def test_adwin_raises_no_alarm_on_stationary_streams_without_a_cooldown() -> None:
    for seed, rate in ((0, 0.1), (1, 0.3), (2, 0.5)):
        spec = DetectorSpec(detector="ADWIN", cooldown_observations=0)
        assert feed(ErrorStreamMonitor(spec), errors(random.Random(200 + seed), rate, 20_000)) == []
