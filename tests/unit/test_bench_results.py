"""From a window's samples to its verdict and latencies, and from results to the Markdown."""

from __future__ import annotations

import math
import os
import time
from typing import Any

from schemas.spec import load_spec
from services.cli.bench.pipeline import fan_in, judge_step, latency_figures
from services.cli.bench.report import render
from services.cli.bench.scrape import cpu_seconds
from services.cli.bench.wire import WindowPublished

SERVICES = ("features", "model", "drift", "metrics-sink")


def sample(t: float, published: int, predicted: float, lag: float = 0.0,
           rss: int = 100 * 2**20) -> dict[str, Any]:
    return {"t": t, "published": published, "predicted": predicted,
            "backlog": published - predicted, "lag": dict.fromkeys(SERVICES, lag),
            "rss": {"model": rss, "broker": 2 * rss}}


def window(rate: float, seconds: float, events: int | None = None) -> WindowPublished:
    return WindowPublished(1, rate, events=int(rate * seconds) if events is None else events,
                           seconds=seconds)


def test_a_window_the_pipeline_keeps_up_with_is_sustained() -> None:
    samples = [sample(t, 500 * t, 500 * t - 40) for t in range(11)]
    samples[5]["rss"]["model"] = 300 * 2**20
    for row in samples:
        row["checkpoint_bytes"] = 1000.0 * row["t"]
        row["cpu"] = {"model": 0.2 * row["t"], "broker": 10 + 0.1 * row["t"], "gone": None}
    verdict = judge_step(500.0, window(500.0, 10.0), samples)
    assert verdict["sustained"]
    # 2 s of model CPU and 1 s of broker CPU over 5,000 events; a process gone is left out
    assert verdict["cpu_ms_per_event"] == {"model": 0.4, "broker": 0.2}
    assert verdict["peak_checkpoint_bytes"] == 10_000.0
    assert verdict["predictions_per_second"] == 500.0
    assert verdict["peak_rss_bytes"] == {"model": 300 * 2**20, "broker": 200 * 2**20}


def test_a_window_whose_backlog_grows_is_not_sustained() -> None:
    samples = [sample(t, 1000 * t, 750 * t) for t in range(11)]
    verdict = judge_step(1000.0, window(1000.0, 10.0), samples)
    assert not verdict["sustained"]
    assert not verdict["backlog"]["bounded"]
    assert verdict["predictions_per_second"] == 750.0


def test_a_standing_queue_of_more_than_a_second_of_events_is_not_sustained() -> None:
    samples = [sample(t, 500 * t, 500 * t - 700) for t in range(11)]  # 1.4 s behind, steady
    verdict = judge_step(500.0, window(500.0, 10.0), samples)
    assert not verdict["sustained"] and verdict["backlog"]["end_limit"] == 500.0
    for row in samples:  # the same standing lag in a service is within its two seconds
        row["predicted"], row["backlog"], row["lag"]["drift"] = 500 * row["t"], 0, 700.0
    assert judge_step(500.0, window(500.0, 10.0), samples)["sustained"]


def test_a_lagging_service_fails_the_window_even_when_predictions_keep_up() -> None:
    samples = [sample(t, 500 * t, 500 * t) for t in range(11)]
    for row in samples:  # keeps up, then falls behind by 120 messages a second
        row["lag"]["drift"] = 100.0 + 120.0 * max(0.0, row["t"] - 5)
    verdict = judge_step(500.0, window(500.0, 10.0), samples)
    assert not verdict["sustained"]
    assert not verdict["lag"]["drift"]["bounded"] and verdict["lag"]["model"]["bounded"]


def test_each_service_is_judged_at_the_rate_of_the_messages_it_reads() -> None:
    assert fan_in(load_spec("elec2")) == {"features": 1.0, "model": 2.0, "drift": 2.0,
                                          "metrics-sink": 2.0}
    assert fan_in(load_spec("clicks")) == {"features": 3.0, "model": 2.0, "drift": 3.0,
                                           "metrics-sink": 3.0}
    # a reader of transactional outputs sees a second of predictions and outcomes at each
    # commit; its gauge, refreshed every 5 s, catches the pulses at random heights
    samples = [sample(t, 500 * t, 500 * t) for t in range(11)]
    for row in samples:
        row["lag"]["metrics-sink"] = 300.0 if row["t"] < 5 else 1700.0 if row["t"] < 10 else 900.0
    assert not judge_step(500.0, window(500.0, 10.0), samples)["sustained"]
    scaled = judge_step(500.0, window(500.0, 10.0), samples, fan_in(load_spec("elec2")))
    assert scaled["sustained"] and scaled["lag"]["metrics-sink"]["end_limit"] == 2000.0


def test_a_publisher_that_fell_short_of_the_rate_fails_the_window() -> None:
    samples = [sample(t, 400 * t, 400 * t) for t in range(11)]
    verdict = judge_step(500.0, window(500.0, 10.0, events=4000), samples)
    assert not verdict["sustained"] and verdict["achieved_rate"] == 400.0


def test_latency_figures_measure_from_publish_to_read_and_to_learned() -> None:
    published = WindowPublished(3, 1000.0, events=3, seconds=0.003)
    published.event_times = {"a": 100.000, "b": 100.001, "c": 100.002}
    published.label_times = {"a": 100.0005, "b": 100.0015, "c": 100.0025}
    read = {
        # id -> [read at, model read the vector at, predicted at]
        "read_uncommitted": {"a": [100.004, 100.002, 100.003], "b": [100.006, 100.003, 100.004]},
        "read_committed": {"a": [100.5, 0.0, 0.0], "b": [100.5, 0.0, 0.0],
                           "c": [100.5, 0.0, 0.0]},
    }
    learned = {"a": 100.0025, "b": 100.0035}
    figures = latency_figures(published, {"a", "b", "c"}, read, learned)
    uncommitted = figures["event_to_prediction_read_uncommitted_ms"]
    assert uncommitted["count"] == 2 and math.isclose(uncommitted["max"], 5.0, abs_tol=1e-6)
    assert figures["missing_read_uncommitted"] == 1 and figures["missing_read_committed"] == 0
    assert math.isclose(figures["event_to_prediction_read_committed_ms"]["p50"], 499.0,
                        abs_tol=1e-6)
    parts = figures["parts_ms"]
    assert math.isclose(parts["model_read_to_predicted"]["p50"], 1.0, abs_tol=1e-6)
    assert math.isclose(parts["predicted_to_readable"]["max"], 2.0, abs_tol=1e-6)
    assert math.isclose(figures["label_to_learned_ms"]["p99"], 2.0, abs_tol=1e-6)
    assert figures["labels_not_learned"] == 1


def results(**pipeline: Any) -> dict[str, Any]:
    in_process = {"events": 45312, "events_per_second": 16000.0, "accuracy": 0.8165,
                  "models": ["logreg"], "load_before": [0.5, 0.4, 0.3],
                  "load_after": [0.6, 0.4, 0.3]}
    return {
        "when": "2026-11-22T20:00:00+00:00", "machine": "x86_64, 2 CPUs, Python 3.11.7",
        "river_version": "0.26.1", "spec": "elec2", "stream": "data/elec2.csv",
        "champion": "logreg", "champion_estimator": "StandardScaler | LogisticRegression()",
        "models": ["logreg"], "label_delay": 0, "river_delay": 1, "quick": False,
        "load": {"start": [0.5, 0.4, 0.3], "end": [0.7, 0.5, 0.3]},
        "in_process": {"river": in_process, "service_logic": {**in_process,
                                                             "events_per_second": 8000.0}},
        **pipeline,
    }


def test_the_report_without_the_pipeline_shows_river_alone() -> None:
    markdown = render(results())
    assert markdown.startswith("# streamml bench: elec2\n")
    assert "| River in process (`progressive_val_score`, 45,312 events): events/s | 16,000 |" \
        in markdown
    assert "81.65%" in markdown and "0.50 → 0.60" in markdown
    assert "sustained" not in markdown.split("Lag is bounded")[0]


def test_the_report_shows_the_pipeline_figures_targets_and_missing_values() -> None:
    latency = {"rate": 1000.0, "sustained": True, "load_before": [1.0], "load_after": [1.5],
               "event_to_prediction_read_uncommitted_ms": {
                   "count": 30000, "p50": 3.0, "p95": 6.0, "p99": 9.5, "max": 40.0},
               "event_to_prediction_read_committed_ms": {
                   "count": 0, "p50": math.nan, "p95": math.nan, "p99": math.nan,
                   "max": math.nan}}
    step = {"rate": 2000.0, "achieved_rate": 1999.0, "predictions_per_second": 1500.0,
            "backlog": {"end": 9000.0, "growth_per_second": 480.0}, "sustained": False,
            "stopped_early": True, "lag": {name: {"end": 10.0} for name in SERVICES},
            "load_before": [1.0], "load_after": [1.2]}
    best = {**step, "rate": 1414.0, "sustained": True, "stopped_early": False,
            "cpu_ms_per_event": {"model": 0.5, "features": 0.75, "broker": 0.25}}
    markdown = render(results(
        pipeline={"search": {"sustained_max": 1414.0, "predictions_per_second_at_max": 1410.0,
                             "steps": [step, best]},
                  "latency": [latency], "rss_bytes": {"model": 150 * 2**20,
                                                      "broker": 1024 * 2**20},
                  "checkpoint_bytes": 2048.0 * 1024},
        ratio={"river": 1414.0 / 16000.0, "service_logic": 1414.0 / 8000.0},
        profiles={"error": "py-spy is not installed"}))
    assert "| 1,414 (1,410 predictions/s) |" in markdown
    assert "| pipeline / River in process | 0.088 | ≥ 0.25 |" in markdown
    assert "3.0 / 6.0 / 9.5 ms (n=30,000) | p99 ≤ 10 ms | 1.00 → 1.50 |" in markdown
    assert "read_committed, at 1,000/s | n/a |" in markdown
    assert "| 150 / 1,024 |" in markdown
    assert "| CPU per event at 1,414/s, ms (features / model / broker; sum) | " \
        "0.75 / 0.50 / 0.25; 1.50 |" in markdown
    assert "deltas in between), largest, KiB | 2,048 |" in markdown
    assert "| 2,000 | 1,999 | 1,500 | 9,000 (480) | 10 / 10 / 10 / 10 | no (stopped early) |" \
        in markdown
    assert "No profile: py-spy is not installed." in markdown


def test_cpu_seconds_reads_a_process_cpu_time_and_none_once_it_is_gone() -> None:
    before = cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:  # burn some CPU
        pass
    after = cpu_seconds(os.getpid())
    assert before is not None and after is not None and after > before
    assert cpu_seconds(2**22 + 1) is None  # above Linux's pid limit: no such process
