"""The replay loop, on an in-memory producer and a manual clock: label delay in events or in
seconds, pacing without drift, bad rows, stops, limits; and the ``streamml replay`` command's
errors."""

from __future__ import annotations

import io
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.spec import PipelineSpec, load_spec
from services.cli.main import main
from services.common.runtime import StopSignal
from services.common.settings import Settings
from services.producer.client import EventClient
from services.producer.progress import Progress
from services.producer.replay import BadRow, RowConverter, SourceRow
from services.producer.replay_stream import ReplayOptions, ReplaySummary, replay_rows
from tests.unit.fakes import FakeProducer

START = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
ELEC2_ROW = {"period": "0.5", "nswprice": "0.05", "nswdemand": "0.4", "vicprice": "0.003",
             "vicdemand": "0.42", "transfer": "0.41", "class": "1"}


class AckingProducer(FakeProducer):
    """Records produced messages; every flush succeeds."""

    flushes = 0

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        self.flushes += 1
        return 0


@dataclass
class ManualTime:
    """A monotonic clock whose waits move it forward (by ``oversleep`` more than asked)."""

    now: float = 0.0
    oversleep: float = 0.0
    stop_when_waiting: StopSignal | None = None

    def clock(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return START + timedelta(seconds=self.now)

    def wait(self, seconds: float) -> bool:
        if self.stop_when_waiting is not None:
            self.stop_when_waiting.set()
            return True
        self.now += seconds + self.oversleep
        return False


@pytest.fixture(scope="module")
def spec() -> PipelineSpec:
    return load_spec("elec2")


def rows(count: int, bad: frozenset[int] = frozenset()) -> Iterator[SourceRow]:
    for number in range(1, count + 1):
        values = {**ELEC2_ROW, "nswprice": "oops"} if number in bad else ELEC2_ROW
        yield SourceRow(number + 1, number, values)


def run(
    spec: PipelineSpec,
    source: Iterator[SourceRow],
    options: ReplayOptions,
    time: ManualTime | None = None,
    stop: StopSignal | None = None,
    bad_rows: list[BadRow] | None = None,
) -> tuple[ReplaySummary, AckingProducer]:
    producer = AckingProducer()
    client = EventClient(producer, Settings(topic_prefix=""), "market")
    time = time or ManualTime()
    summary = replay_rows(
        source, RowConverter(spec, "rows.csv"), client, options, stop or StopSignal(),
        on_bad_row=None if bad_rows is None else bad_rows.append,
        clock=time.clock, now=time.wall, wait=time.wait,
    )
    return summary, producer


def sequence(producer: FakeProducer) -> list[str]:
    """``e3``/``l3`` for the event/label of ``elec2-3``, in publication order."""
    out = []
    for record in producer.records:
        assert record.value is not None
        number = orjson.loads(record.value)["event_id"].removeprefix("elec2-")
        out.append(("e" if record.topic == "events" else "l") + number)
    return out


def test_each_label_follows_its_event_by_default(spec: PipelineSpec) -> None:
    summary, producer = run(spec, rows(3), ReplayOptions())
    assert sequence(producer) == ["e1", "l1", "e2", "l2", "e3", "l3"]
    assert (summary.rows, summary.events, summary.labels, summary.bad_rows) == (3, 3, 3, 0)
    assert not summary.stopped


def test_label_of_row_i_comes_right_after_event_i_plus_n(spec: PipelineSpec) -> None:
    summary, producer = run(spec, rows(5), ReplayOptions(label_delay_events=2))
    assert sequence(producer) == ["e1", "e2", "e3", "l1", "e4", "l2", "e5", "l3", "l4", "l5"]
    assert summary.events == summary.labels == 5
    assert producer.flushes == 1
    keys = {record.topic: record.key for record in producer.records}
    assert keys == {"events": b"nsw", "labels": b"elec2-5"}


def test_a_delay_longer_than_the_file_sends_every_label_at_the_end(spec: PipelineSpec) -> None:
    _, producer = run(spec, rows(2), ReplayOptions(label_delay_events=10))
    assert sequence(producer) == ["e1", "e2", "l1", "l2"]


def test_labels_wait_their_delay_in_seconds(spec: PipelineSpec) -> None:
    time = ManualTime()
    summary, producer = run(spec, rows(3), ReplayOptions(label_delay_seconds=1.5, rate=1.0),
                            time)
    assert sequence(producer) == ["e1", "e2", "l1", "e3", "l2", "l3"]
    sent = [orjson.loads(record.value or b"") for record in producer.records]
    event_times = {m["event_id"]: m["event_time"] for m in sent if "event_time" in m}
    for label in (m for m in sent if "label_time" in m):
        delay = (datetime.fromisoformat(label["label_time"])
                 - datetime.fromisoformat(event_times[label["event_id"]]))
        assert delay == timedelta(seconds=1.5)
    assert summary.labels == 3
    assert summary.seconds == pytest.approx(3.5)


def test_pacing_follows_an_absolute_schedule_so_oversleeping_does_not_accumulate(
    spec: PipelineSpec,
) -> None:
    time = ManualTime(oversleep=0.01)
    _, producer = run(spec, rows(50), ReplayOptions(rate=4.0), time)
    published = [
        (datetime.fromisoformat(message["event_time"]) - START).total_seconds()
        for message in (orjson.loads(r.value or b"") for r in producer.on("events"))
    ]
    lateness = [at - index / 4.0 for index, at in enumerate(published)]
    assert max(lateness) == pytest.approx(0.01)
    assert min(lateness) >= 0


def test_as_fast_as_possible_never_waits(spec: PipelineSpec) -> None:
    time = ManualTime()
    summary, _ = run(spec, rows(100), ReplayOptions(label_delay_events=3), time)
    assert time.now == 0.0
    assert summary.events == 100


def test_a_bad_row_stops_the_replay_after_sending_the_labels_of_sent_events(
    spec: PipelineSpec,
) -> None:
    producer = AckingProducer()
    client = EventClient(producer, Settings(topic_prefix=""), "market")
    with pytest.raises(BadRow, match=r"rows.csv line 4: field 'nswprice': 'oops'"):
        replay_rows(rows(5, bad=frozenset({3})), RowConverter(spec, "rows.csv"), client,
                    ReplayOptions(label_delay_events=5), StopSignal())
    assert sequence(producer) == ["e1", "e2", "l1", "l2"]
    assert producer.flushes == 1


def test_skip_bad_counts_and_reports_bad_rows(spec: PipelineSpec) -> None:
    reported: list[BadRow] = []
    summary, producer = run(spec, rows(6, bad=frozenset({2, 5})),
                            ReplayOptions(label_delay_events=1, skip_bad=True),
                            bad_rows=reported)
    assert (summary.rows, summary.events, summary.labels, summary.bad_rows) == (6, 4, 4, 2)
    assert [error.line for error in reported] == [3, 6]
    assert sequence(producer) == ["e1", "e3", "l1", "e4", "l3", "e6", "l4", "l6"]
    assert "skipped 2 bad rows" in summary.describe("rows.csv")


def test_a_stop_ends_the_events_and_sends_the_pending_labels(spec: PipelineSpec) -> None:
    stop = StopSignal()

    def stopping_after_three() -> Iterator[SourceRow]:
        for row in rows(10):
            if row.number == 4:
                stop.set()
            yield row

    summary, producer = run(spec, stopping_after_three(),
                            ReplayOptions(label_delay_events=5), stop=stop)
    assert sequence(producer) == ["e1", "e2", "e3", "l1", "l2", "l3"]
    assert summary.stopped
    assert summary.describe("f.csv").startswith("stopped early: replayed 3 events and 3 labels")


def test_a_stop_while_labels_are_due_sends_them_at_once(spec: PipelineSpec) -> None:
    stop = StopSignal()
    time = ManualTime(stop_when_waiting=stop)
    summary, producer = run(spec, rows(2), ReplayOptions(label_delay_seconds=60), time, stop)
    assert sequence(producer) == ["e1", "e2", "l1", "l2"]
    assert summary.stopped
    assert time.now == 0.0


def test_a_stop_while_pacing_ends_before_the_next_row(spec: PipelineSpec) -> None:
    stop = StopSignal()
    time = ManualTime(stop_when_waiting=stop)
    summary, producer = run(spec, rows(5), ReplayOptions(rate=1.0, label_delay_events=3),
                            time, stop)
    assert sequence(producer) == ["e1", "l1"]
    assert (summary.rows, summary.events, summary.labels, summary.stopped) == (1, 1, 1, True)


def test_limit_reads_only_the_first_rows(spec: PipelineSpec) -> None:
    summary, _ = run(spec, rows(10), ReplayOptions(limit=4))
    assert (summary.rows, summary.events, summary.labels) == (4, 4, 4)


@pytest.mark.parametrize(("options", "message"), [
    ({"label_delay_events": 1, "label_delay_seconds": 1.0}, "not both"),
    ({"label_delay_events": -1}, ">= 0 events"),
    ({"label_delay_seconds": float("nan")}, ">= 0 seconds"),
    ({"rate": 0.0}, "positive"),
    ({"limit": -5}, ">= 0 rows"),
])
def test_impossible_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReplayOptions(**options)


def test_the_final_line_counts_and_measures() -> None:
    summary = ReplaySummary(rows=10, events=10, labels=10, bad_rows=0, seconds=2.0,
                            stopped=False)
    assert summary.describe("data/x.csv") == (
        "replayed 10 events and 10 labels from data/x.csv in 2.0s (5 events/s)"
    )


def test_progress_redraws_at_most_five_times_a_second_and_clears_itself() -> None:
    stream, clock = io.StringIO(), ManualTime()
    progress = Progress(stream, show=True, clock=clock.clock)
    for events in range(1, 11):
        clock.now += 0.125
        progress.update(events, events, events - 1, clock.now)
    assert stream.getvalue().count("\r") == 5  # every other update: 0.25 s apart
    assert "10 events" not in stream.getvalue()
    progress.note("skipped: x.csv line 3: bad")
    progress.close()
    assert stream.getvalue().endswith("skipped: x.csv line 3: bad\n")
    silent = io.StringIO()
    Progress.on_terminal(silent).update(1, 1, 1, 1.0, force=True)
    assert silent.getvalue() == ""


@pytest.fixture
def restore_signals() -> Iterator[None]:
    """The command installs SIGINT/SIGTERM handlers; put pytest's back afterwards."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


@pytest.mark.usefixtures("restore_signals")
def test_the_command_reports_unusable_input_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "rows.csv"
    data.write_text("a\n1\n")
    assert main(["replay", str(data), "--spec", str(tmp_path / "absent.toml")]) == 2
    assert "streamml replay: no spec" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "rows.txt"), "--spec", "elec2"]) == 2
    assert "cannot tell the format" in capsys.readouterr().err
    spec_file = tmp_path / "plain.toml"
    spec_file.write_text(
        (Path(__file__).resolve().parents[2] / "schemas/specs/elec2.toml").read_text()
        .split("[source]")[0]
    )
    assert main(["replay", str(data), "--spec", str(spec_file)]) == 2
    assert "has no [source] section" in capsys.readouterr().err


def test_the_command_takes_one_kind_of_label_delay(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["replay", "x.csv", "--spec", "elec2", "--label-delay", "1",
              "--label-delay-seconds", "2"])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
