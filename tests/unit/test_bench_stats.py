"""The benchmark's arithmetic: percentiles, trends, the lag verdict and the rate search."""

from __future__ import annotations

import doctest
import math
from types import ModuleType

import pytest

from services.cli.bench import profiling, report, scrape, stats, workload
from services.cli.bench.stats import judge_lag, next_rate, percentile, slope, summarize


@pytest.mark.parametrize("module", [stats, scrape, workload, profiling, report],
                         ids=lambda module: module.__name__)
def test_docstring_examples_run(module: ModuleType) -> None:
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 0.5) == 51.0
    assert percentile(values, 0.99) == 100.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([7.0], 0.95) == 7.0
    assert math.isnan(percentile([], 0.5))


def test_summary_of_latencies() -> None:
    summary = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (summary.count, summary.p50, summary.p95, summary.p99, summary.max) == (
        5, 3.0, 5.0, 5.0, 5.0)
    empty = summarize([])
    assert empty.count == 0 and math.isnan(empty.p99) and math.isnan(empty.max)


def test_slope_is_the_least_squares_growth_per_second() -> None:
    assert slope([(0.0, 10.0), (1.0, 12.0), (2.0, 14.0)]) == pytest.approx(2.0)
    assert slope([(0.0, 5.0)]) == 0.0
    assert slope([(1.0, 5.0), (1.0, 9.0)]) == 0.0


def steady(rate: float, seconds: int, level: float, wobble: float) -> list[tuple[float, float]]:
    return [(float(t), level + (wobble if t % 2 else -wobble)) for t in range(seconds + 1)]


def test_a_lag_that_holds_steady_is_bounded() -> None:
    verdict = judge_lag(steady(1000.0, 30, level=150.0, wobble=60.0), rate=1000.0)
    assert verdict.bounded
    assert verdict.end_limit == 2000.0


def test_a_lag_that_grows_with_the_unserved_rate_is_not_bounded() -> None:
    # offered 1000/s: served in full for 15 s, then at 900/s
    series = [(float(t), 100.0 + 100.0 * max(0, t - 15)) for t in range(31)]
    verdict = judge_lag(series, rate=1000.0)
    assert not verdict.bounded
    assert verdict.growth_per_second == pytest.approx(100.0)
    assert verdict.end < verdict.end_limit  # the growth alone decides here
    # served at 900/s from the start: 3,000 behind after 30 s
    assert not judge_lag([(float(t), 100.0 * t) for t in range(31)], rate=1000.0).bounded


def test_a_lag_that_ends_too_high_is_not_bounded_even_if_flat() -> None:
    verdict = judge_lag([(float(t), 5000.0) for t in range(10)], rate=1000.0)
    assert not verdict.bounded and verdict.growth_per_second == 0.0


def test_growth_within_the_noise_of_a_short_window_is_tolerated() -> None:
    # 8 s at 125/s: a gauge refreshed every few seconds steps from 0 to 17 at the end
    series = [(float(t), 0.0) for t in range(8)] + [(8.0, 17.0)]
    assert judge_lag(series, rate=125.0).bounded


def test_nothing_measured_is_not_bounded() -> None:
    assert not judge_lag([], rate=500.0).bounded


LADDER = (250.0, 500.0, 1000.0, 2000.0)


def test_the_search_climbs_the_ladder_while_rates_pass() -> None:
    assert next_rate([], LADDER, 2) == 250.0
    assert next_rate([(250.0, True)], LADDER, 2) == 500.0
    assert next_rate([(r, True) for r in LADDER], LADDER, 2) is None


def test_the_search_bisects_between_the_best_pass_and_the_first_fail() -> None:
    history = [(250.0, True), (500.0, True), (1000.0, False)]
    assert next_rate(history, LADDER, 2) == 707
    history.append((707.0, True))
    assert next_rate(history, LADDER, 2) == 841
    history.append((841.0, False))
    assert next_rate(history, LADDER, 2) is None  # two refinements done


def test_the_search_stops_when_pass_and_fail_are_close() -> None:
    history = [(250.0, True), (500.0, True), (1000.0, False), (707.0, True), (760.0, False)]
    assert next_rate(history, LADDER, 10, tolerance=0.1) is None


def test_the_search_halves_below_a_first_rung_that_fails() -> None:
    assert next_rate([(250.0, False)], LADDER, 1) == 125
    assert next_rate([(250.0, False), (125.0, False)], LADDER, 1) == 62
    history = [(250.0, False), (125.0, False), (62.0, True)]
    assert next_rate(history, LADDER, 1) == 88
    history.append((88.0, True))
    assert next_rate(history, LADDER, 1) is None
    assert next_rate([(250.0, False), (125.0, False), (62.0, False)], LADDER, 1) is None
