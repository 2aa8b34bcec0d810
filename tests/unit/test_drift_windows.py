"""The reference/recent window mechanics: when checks happen, cooldown and re-base."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

import pytest

from services.drift.windows import Check, Finding, ShiftWindows, Signal

T = TypeVar("T")


class MeanBaseline:
    """Fires when the recent mean of small integers moves more than 0.5 from the reference's."""

    fitted: list[list[int]] = []

    def __init__(self, reference: Sequence[int]) -> None:
        MeanBaseline.fitted.append(list(reference))
        self.mean = sum(reference) / len(reference)

    def key(self, value: int) -> Hashable:
        return value

    def compare(self, recent: Mapping[Hashable, int], size: int) -> list[Finding]:
        total = sum(int(str(key)) * count for key, count in recent.items())
        return [Finding("mean", abs(total / size - self.mean), 0.5)]


def windows(cooldown: int = 0) -> ShiftWindows[int]:
    MeanBaseline.fitted = []
    return ShiftWindows(MeanBaseline, reference_size=10, window_size=5, check_every=5,
                        cooldown_observations=cooldown)


def feed(monitor: ShiftWindows[T], values: list[T]) -> list[Check]:
    return [check for check in map(monitor.update, values) if check is not None]


def test_checks_start_once_reference_and_window_are_full_then_come_every_check_every() -> None:
    monitor = windows()
    checks = feed(monitor, [0] * 40)
    assert [check.position for check in checks] == [15, 20, 25, 30, 35, 40]
    assert all(check.alert is None for check in checks)
    assert checks[0].findings == (Finding("mean", 0.0, 0.5),)
    assert monitor.position == 40
    assert MeanBaseline.fitted == [[0] * 10]


def test_an_alert_is_followed_by_quiet_then_a_new_reference_from_after_the_alert() -> None:
    monitor = windows(cooldown=0)
    checks = feed(monitor, [0] * 10 + [1] * 60)
    alerts = [check for check in checks if check.alert is not None]
    assert [check.position for check in alerts] == [15]  # the recent window is all ones
    assert alerts[0].alert == Finding("mean", 1.0, 0.5)
    assert monitor.phase == "monitoring"
    # Quiet for reference_size observations (16..25), re-based on them, window full at 30.
    assert MeanBaseline.fitted == [[0] * 10, [1] * 10]
    assert [check.position for check in checks] == [15, 30, 35, 40, 45, 50, 55, 60, 65, 70]
    assert monitor.alerts == 1


def test_a_long_cooldown_re_bases_on_the_last_reference_size_observations() -> None:
    monitor = windows(cooldown=30)
    checks = feed(monitor, [0] * 10 + [1] * 5 + list(range(2, 22)) + [7] * 30)
    assert [check.position for check in checks if check.alert] == [15]
    assert monitor.phase == "monitoring"
    assert MeanBaseline.fitted[1] == [7] * 10  # observations 36..45, not the 30 since the alert
    assert [check.position for check in checks] == [15, 50, 55, 60, 65]


def test_a_signal_keeps_model_names_out_of_its_metric_target() -> None:
    check = Check(5, (), None)
    assert Signal("prediction", "score:logreg", "logreg", check).metric_target == "score"
    assert Signal("covariate", "feature:price", None, check).metric_target == "feature:price"


@pytest.mark.parametrize("sizes", [(0, 5, 5, 0), (10, 0, 5, 0), (10, 5, 0, 0), (10, 5, 5, -1)])
def test_sizes_must_be_positive(sizes: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError, match="positive"):
        ShiftWindows(MeanBaseline, *sizes)


class FloatMeanBaseline:
    """Fires when the recent mean moves more than 0.5 from the reference's."""

    def __init__(self, reference: Sequence[float]) -> None:
        self.reference = list(reference)
        self.mean = sum(reference) / len(reference)

    def key(self, value: float) -> Hashable:
        return value

    def compare(self, recent: Mapping[Hashable, int], size: int) -> list[Finding]:
        total = sum(float(str(key)) * count for key, count in recent.items())
        return [Finding("mean", abs(total / size - self.mean), 0.5)]


def float_windows(trailing: bool) -> ShiftWindows[float]:
    return ShiftWindows(FloatMeanBaseline, reference_size=10, window_size=5, check_every=5,
                        cooldown_observations=0, trailing=trailing)


def test_a_trailing_reference_follows_a_slow_change_that_a_fixed_one_alerts_on() -> None:
    ramp = [0.04 * index for index in range(200)]  # means of adjacent windows differ by 0.3
    fixed = [check for check in feed(float_windows(trailing=False), ramp) if check.alert]
    trailing = [check for check in feed(float_windows(trailing=True), ramp) if check.alert]
    assert fixed
    assert trailing == []


def test_a_trailing_reference_finds_an_abrupt_change_as_soon_as_a_fixed_one() -> None:
    stream = [0.0] * 47 + [1.0] * 30
    fixed = [check.position for check in feed(float_windows(trailing=False), stream)
             if check.alert]
    trailing = [check.position for check in feed(float_windows(trailing=True), stream)
                if check.alert]
    assert fixed == trailing == [50]


def test_a_trailing_reference_is_the_reference_size_values_before_the_recent_window() -> None:
    monitor = float_windows(trailing=True)
    checks = feed(monitor, [float(index % 2) for index in range(34)] + [0.5])
    assert all(check.alert is None for check in checks)
    assert monitor.position == 35
    baseline = monitor.baseline
    assert isinstance(baseline, FloatMeanBaseline)
    # Fitted at 10, re-fitted every window_size (5) observations: last at 35, on 21..30.
    assert baseline.reference == [float(index % 2) for index in range(20, 30)]


def test_a_settling_monitor_restarts_its_reference_until_a_whole_window_passes() -> None:
    monitor = ShiftWindows(FloatMeanBaseline, reference_size=10, window_size=5, check_every=5,
                           cooldown_observations=0, settle=True)
    # Still "learning" up to 45: three references are left behind, silently; the fourth (46..55)
    # passes its checks at 60 and 65, and the change at 71 is an alert.
    checks = feed(monitor, [0.1 * index for index in range(40)] + [4.0] * 30 + [9.0] * 10)
    assert [check.position for check in checks if check.alert] == [75]
    assert [check.position for check in checks][:4] == [15, 30, 45, 60]
    assert monitor.settled
    assert isinstance(monitor.baseline, FloatMeanBaseline)
    assert monitor.alerts == 1
