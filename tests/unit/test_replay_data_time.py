"""Replaying a file that keeps its own times, on a recording publisher and a manual clock: events
keep the data's times; pacing at the data's pace, N times faster or as fast as possible; labels
in data time (a delay, or a label time column) published in data-time order; rows whose time
goes backwards; bad time rows; and the options a source without a time column refuses."""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.events import Event, Label
from schemas.spec import PipelineSpec, load_spec
from services.cli.main import main, parse_speed
from services.common.runtime import StopSignal
from services.producer.replay import BadRow, ReplayError, RowConverter, SourceRow, read_rows
from services.producer.replay_stream import ReplayOptions, ReplaySummary, replay_rows
from tests.unit.test_replay_stream import ManualTime, restore_signals  # noqa: F401 (fixture)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ELEC2 = Path(__file__).resolve().parents[2] / "schemas/specs/elec2.toml"
T0 = datetime(2024, 1, 15, tzinfo=UTC)
HOUR = 3600.0


@dataclass
class Recorder:
    """A publisher that notes what was sent, in order, and when on the manual clock."""

    time: ManualTime
    sent: list[tuple[str, str, datetime, float]] = field(default_factory=list)
    events_published: int = 0
    labels_published: int = 0
    flushes: int = 0

    def publish_event(self, event: Event) -> Event:
        self.events_published += 1
        self.sent.append(("e", event.event_id, event.event_time, self.time.now))
        return event

    def publish_label(self, label: Label) -> Label:
        self.labels_published += 1
        self.sent.append(("l", label.event_id, label.label_time, self.time.now))
        return label

    def flush(self, timeout: float = 120.0) -> None:
        self.flushes += 1

    def order(self) -> list[str]:
        """``e3``/``l3`` for the event/label of row 3, in publication order."""
        return [kind + event_id.rsplit("-", 1)[1] for kind, event_id, _, _ in self.sent]

    def at(self, kind: str) -> dict[str, float]:
        """Manual-clock second each event (``e``) or label (``l``) was published, by id."""
        return {i: wall for k, i, _, wall in self.sent if k == kind}

    def times(self, kind: str) -> dict[str, datetime]:
        """The event time of each event, or the label time of each label, by id."""
        return {i: moment for k, i, moment, _ in self.sent if k == kind}


@pytest.fixture(scope="module")
def timed(tmp_path_factory: pytest.TempPathFactory) -> PipelineSpec:
    """Elec2's fields, with times in an ``at`` column (epoch seconds)."""
    path = tmp_path_factory.mktemp("specs") / "timed.toml"
    path.write_text(ELEC2.read_text().replace(
        'entity = { market = "nsw" }',
        'entity = { market = "nsw" }\ntime_column = "at"\ntime_format = "epoch_seconds"'))
    return load_spec(str(path))


@pytest.fixture(scope="module")
def meter() -> PipelineSpec:
    return load_spec(str(FIXTURES / "meter.toml"))


def hours(*offsets: float, bad: frozenset[int] = frozenset()) -> Iterator[SourceRow]:
    """Elec2-like rows whose times are ``T0`` plus each offset in hours (row ``bad`` has an
    unreadable time)."""
    for number, offset in enumerate(offsets, start=1):
        at = "never" if number in bad else str(int(T0.timestamp() + offset * HOUR))
        yield SourceRow(number + 1, number, {
            "period": "0.5", "nswprice": "0.05", "nswdemand": "0.4", "vicprice": "0.003",
            "vicdemand": "0.42", "transfer": "0.41", "class": "1", "at": at})


def run(spec: PipelineSpec, rows: Iterator[SourceRow], options: ReplayOptions,
        time: ManualTime | None = None, stop: StopSignal | None = None,
        bad_rows: list[BadRow] | None = None) -> tuple[ReplaySummary, Recorder]:
    time = time or ManualTime()
    recorder = Recorder(time)
    summary = replay_rows(rows, RowConverter(spec, "rows.csv"), recorder, options,
                          stop or StopSignal(),
                          on_bad_row=None if bad_rows is None else bad_rows.append,
                          clock=time.clock, wait=time.wait)
    return summary, recorder


def test_events_keep_the_data_time_not_the_publication_time(timed: PipelineSpec) -> None:
    summary, sent = run(timed, hours(0, 1, 24), ReplayOptions())
    assert sent.times("e") == {"elec2-1": T0, "elec2-2": T0 + timedelta(hours=1),
                               "elec2-3": T0 + timedelta(hours=24)}
    assert summary.data_seconds == 24 * HOUR
    assert summary.describe("f.csv").endswith("(0 events/s), 1.0 d of data time")


def test_at_speed_one_events_are_published_at_the_data_pace(timed: PipelineSpec) -> None:
    time = ManualTime(oversleep=0.01)
    _, sent = run(timed, hours(0, 0.5, 0.5, 2), ReplayOptions(speed=1.0), time)
    assert sent.at("e") == pytest.approx(
        {"elec2-1": 0.0, "elec2-2": 1800.01, "elec2-3": 1800.01, "elec2-4": 7200.01})


def test_at_speed_n_the_schedule_is_n_times_faster_and_absolute(timed: PipelineSpec) -> None:
    time = ManualTime(oversleep=0.01)
    summary, sent = run(timed, hours(*range(10)), ReplayOptions(speed=3600.0), time)
    lateness = [wall - index for index, wall in enumerate(sent.at("e").values())]
    assert max(lateness) == pytest.approx(0.01)  # oversleeping does not accumulate
    assert min(lateness) >= 0
    assert summary.seconds == pytest.approx(9.01)


def test_at_max_speed_nothing_waits_and_event_times_are_kept(timed: PipelineSpec) -> None:
    time = ManualTime()
    summary, sent = run(timed, hours(0, 24, 48), ReplayOptions(label_delay_seconds=HOUR), time)
    assert time.now == 0.0
    assert sent.times("e")["elec2-3"] == T0 + timedelta(hours=48)
    assert summary.seconds == 0.0


def test_a_rate_paces_by_events_while_events_keep_their_times(timed: PipelineSpec) -> None:
    time = ManualTime()
    _, sent = run(timed, hours(0, 100, 200), ReplayOptions(rate=2.0), time)
    assert list(sent.at("e").values()) == [0.0, 0.5, 1.0]
    assert sent.times("e")["elec2-2"] == T0 + timedelta(hours=100)


def test_a_label_delay_in_data_time_puts_each_label_before_the_first_later_event(
    timed: PipelineSpec,
) -> None:
    summary, sent = run(timed, hours(0, 10, 23, 24, 25, 60),
                        ReplayOptions(label_delay_seconds=24 * HOUR))
    # label 1 is due at 24 h: after the event at 23 h, before the one at 24 h
    assert sent.order() == ["e1", "e2", "e3", "l1", "e4", "e5", "l2", "l3", "l4", "l5",
                            "e6", "l6"]
    for event_id, event_time in sent.times("e").items():
        assert sent.times("l")[event_id] == event_time + timedelta(hours=24)
    assert summary.labels == summary.events == 6


def test_at_speed_n_a_data_time_label_waits_for_its_own_moment(timed: PipelineSpec) -> None:
    time = ManualTime()
    summary, sent = run(timed, hours(0, 4), ReplayOptions(speed=3600.0,
                                                          label_delay_seconds=2 * HOUR), time)
    assert sent.order() == ["e1", "l1", "e2", "l2"]
    assert sent.at("l") == {"elec2-1": 2.0, "elec2-2": 6.0}
    assert summary.seconds == 6.0


def test_a_label_delay_of_zero_follows_its_event(timed: PipelineSpec) -> None:
    _, sent = run(timed, hours(0, 0, 1), ReplayOptions(label_delay_seconds=0.0))
    assert sent.order() == ["e1", "l1", "e2", "l2", "e3", "l3"]


def test_a_label_delay_in_events_takes_the_data_clock_as_label_time(
    timed: PipelineSpec,
) -> None:
    _, sent = run(timed, hours(0, 1, 2, 3), ReplayOptions(label_delay_events=2))
    assert sent.order() == ["e1", "e2", "e3", "l1", "e4", "l2", "l3", "l4"]
    assert sent.times("l") == {"elec2-1": T0 + timedelta(hours=2),
                               "elec2-2": T0 + timedelta(hours=3),
                               "elec2-3": T0 + timedelta(hours=3),
                               "elec2-4": T0 + timedelta(hours=3)}


def test_a_row_whose_time_goes_back_keeps_it_and_pacing_does_not_wait_back(
    timed: PipelineSpec,
) -> None:
    time = ManualTime()
    _, sent = run(timed, hours(0, 3, 1, 4), ReplayOptions(speed=3600.0,
                                                          label_delay_seconds=HOUR), time)
    assert sent.times("e")["elec2-3"] == T0 + timedelta(hours=1)
    assert sent.at("e") == {"elec2-1": 0.0, "elec2-2": 3.0, "elec2-3": 3.0, "elec2-4": 4.0}
    # label 3 is due at 2 h, already passed when its event comes: it follows at once
    assert sent.order() == ["e1", "l1", "e2", "e3", "l3", "l2", "e4", "l4"]
    assert sent.times("l")["elec2-3"] == T0 + timedelta(hours=2)


def test_labels_come_from_the_label_time_column_in_data_time_order(meter: PipelineSpec) -> None:
    path = FIXTURES / "meter.csv"
    converter = RowConverter(meter, str(path))
    time = ManualTime()
    recorder = Recorder(time)
    summary = replay_rows(read_rows(path, converter.required_columns()), converter, recorder,
                          ReplayOptions(speed=3600.0), StopSignal(), clock=time.clock,
                          wait=time.wait)
    assert recorder.order() == ["e1", "e2", "e3", "e4", "l2", "e5", "e6", "l4", "e7", "e8",
                                "l6", "e9", "e10", "l8", "e11", "e12",
                                "l1", "l3", "l5", "l7", "l9", "l10", "l11", "l12"]
    assert recorder.times("l")["m-12"] == datetime(2024, 1, 15, 7, tzinfo=UTC)
    assert recorder.at("l")["m-2"] == 2.0 and recorder.at("l")["m-12"] == 7.0
    assert (summary.events, summary.labels, summary.seconds) == (12, 12, 7.0)


def test_a_bad_time_row_is_skipped_and_counted_without_moving_the_clock(
    timed: PipelineSpec,
) -> None:
    time = ManualTime()
    reported: list[BadRow] = []
    summary, _ = run(timed, hours(0, 50, 1, bad=frozenset({2})),
                        ReplayOptions(speed=3600.0, skip_bad=True), time, bad_rows=reported)
    assert [error.line for error in reported] == [3]
    assert "event time (column 'at'): 'never' is not a number" in str(reported[0])
    assert (summary.rows, summary.events, summary.bad_rows) == (3, 2, 1)
    assert time.now == 1.0


def test_a_bad_time_row_stops_the_replay_after_the_labels_of_sent_events(
    timed: PipelineSpec,
) -> None:
    time = ManualTime()
    recorder = Recorder(time)
    with pytest.raises(BadRow, match=r"rows\.csv line 4: event time"):
        replay_rows(hours(0, 1, 2, bad=frozenset({3})), RowConverter(timed, "rows.csv"),
                    recorder, ReplayOptions(label_delay_seconds=10 * HOUR), StopSignal(),
                    clock=time.clock, wait=time.wait)
    assert recorder.order() == ["e1", "e2", "l1", "l2"]
    assert recorder.flushes == 1


def test_a_stop_while_pacing_sends_the_pending_labels_at_once(timed: PipelineSpec) -> None:
    stop = StopSignal()
    time = ManualTime(stop_when_waiting=stop)
    summary, sent = run(timed, hours(0, 1, 2), ReplayOptions(speed=1.0,
                                                             label_delay_seconds=HOUR),
                        time, stop)
    assert sent.order() == ["e1", "l1"]
    assert sent.times("l")["elec2-1"] == T0 + timedelta(hours=1)
    assert (summary.rows, summary.stopped) == (1, True)


def test_a_speed_needs_a_time_column() -> None:
    with pytest.raises(ReplayError, match="no time_column"):
        run(load_spec("elec2"), iter(()), ReplayOptions(speed=2.0))


def test_a_label_time_column_excludes_a_label_delay(meter: PipelineSpec) -> None:
    with pytest.raises(ReplayError, match="drop the label delay"):
        run(meter, iter(()), ReplayOptions(label_delay_seconds=5.0))


@pytest.mark.parametrize(("options", "message"), [
    ({"speed": 0.0}, "positive factor"),
    ({"speed": float("inf")}, "positive factor"),
    ({"speed": 2.0, "rate": 10.0}, "not both"),
])
def test_impossible_speeds_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReplayOptions(**options)


def test_the_speed_option_takes_a_factor_or_max() -> None:
    assert parse_speed("max") == math.inf
    assert parse_speed("60") == 60.0
    for text in ("0", "-2", "fast", "inf"):
        with pytest.raises(argparse.ArgumentTypeError, match="positive number or 'max'"):
            parse_speed(text)


@pytest.mark.usefixtures("restore_signals")
def test_the_command_refuses_a_speed_for_a_file_without_times_before_connecting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = Path(__file__).resolve().parents[2] / "data/elec2.csv"
    assert main(["replay", str(data), "--spec", "elec2", "--speed", "2"]) == 2
    assert "has no time_column; pace by --rate instead" in capsys.readouterr().err


def test_the_command_takes_a_speed_or_a_rate(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["replay", "x.csv", "--spec", "elec2", "--speed", "max", "--rate", "5"])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
