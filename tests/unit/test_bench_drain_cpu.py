"""CPU per event of a drain: taken between the counts that pass 10% and 90% of the stream."""

from __future__ import annotations

import pytest

from services.cli.bench import drain
from services.cli.bench.anchors import drain_rows


def test_cpu_per_event_is_taken_over_the_ten_to_ninety_percent_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    used = {"model": 5.0, "broker": 20.0}
    monkeypatch.setattr(drain, "cpu_seconds", lambda pid: used["model" if pid == 1 else "broker"])
    window = drain.CpuWindow({"model": 1, "broker": 2}, expected=1000)
    window.on_count(50)  # start-up: before the window
    used.update(model=6.0, broker=21.0)
    window.on_count(100)  # 10%: the window opens
    used.update(model=6.4, broker=21.8)
    window.on_count(500)
    used.update(model=6.8, broker=22.6)
    window.on_count(900)  # 90%: it closes
    used.update(model=99.0, broker=99.0)
    window.on_count(1000)
    assert window.ms_per_event() == {"model": 1.0, "broker": 2.0}


def test_an_unfinished_window_gives_no_figure() -> None:
    window = drain.CpuWindow({"model": 1}, expected=1000)
    window.on_count(100)
    assert window.ms_per_event() == {}


def test_the_drain_rows_show_cpu_per_event_in_service_order_with_the_sum() -> None:
    results = {"drain": {"events": 1000, "events_per_second": 500.0, "accuracy": 0.8,
                         "cpu_ms_per_event": {"broker": 0.2, "model": 0.1, "features": 0.3}}}
    row = next(row for row in drain_rows(results) if "CPU per event" in row)
    assert "(features / model / broker; sum)" in row
    assert "0.300 / 0.100 / 0.200; 0.600" in row


def test_requests_per_event_count_fetches_once_and_skip_missing_counts() -> None:
    from services.cli.bench.broker_requests import parse_counts, per_event

    before = parse_counts("Fetch 100\nFetchConsumer 100\nProduce 50\nnoise\nMetadata 10\n")
    after = parse_counts("Fetch 300\nFetchConsumer 300\nProduce 150\nMetadata 20\n")
    assert per_event(before, after, 100) == {"total": 3.1, "produce": 1.0, "fetch": 2.0}
    assert per_event(None, after, 100) == {}
    assert per_event(before, after, 0) == {}
