"""A replayed file's own times: each ``time_format`` is read as an aware UTC time, the
``[source]`` time keys are checked when the spec loads, and a row whose time is missing, unreadable
or whose label comes before its event is a bad row naming the file, the line and the problem."""

from __future__ import annotations

import doctest
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from schemas.spec import PipelineSpec, SpecError, load_spec
from services.producer import data_time
from services.producer.data_time import parse_time
from services.producer.replay import BadRow, ReplayError, RowConverter, SourceRow, read_rows

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ELEC2 = Path(__file__).resolve().parents[2] / "schemas/specs/elec2.toml"


def spec_with_source(tmp_path: Path, source: str) -> Path:
    """The elec2 spec with its [source] replaced by ``source`` (TOML lines)."""
    head = ELEC2.read_text().split("[source]")[0]
    path = tmp_path / "timed.toml"
    path.write_text(f"{head}[source]\nlabel_column = \"class\"\nentity = {{ market = \"nsw\" }}\n"
                    f"{source}\n")
    return path


@pytest.mark.parametrize(("value", "time_format", "expected"), [
    ("2024-01-15T10:30:00Z", "iso8601", datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
    ("2024-01-15T12:30:00+02:00", "iso8601", datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
    (" 2024-01-15 10:30:00.250 ", "iso8601", datetime(2024, 1, 15, 10, 30, 0, 250_000, UTC)),
    ("2024-01-15", "iso8601", datetime(2024, 1, 15, tzinfo=UTC)),
    (1_705_314_600, "epoch_seconds", datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
    (1_705_314_600.5, "epoch_seconds", datetime(2024, 1, 15, 10, 30, 0, 500_000, UTC)),
    ("1705314600", "epoch_seconds", datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
    ("1705314600123", "epoch_millis", datetime(2024, 1, 15, 10, 30, 0, 123_000, UTC)),
    (1_705_314_600_123, "epoch_millis", datetime(2024, 1, 15, 10, 30, 0, 123_000, UTC)),
    ("15/01/2024 10:30", "%d/%m/%Y %H:%M", datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
    ("15/01/2024 10:30 +0100", "%d/%m/%Y %H:%M %z", datetime(2024, 1, 15, 9, 30, tzinfo=UTC)),
])
def test_each_format_reads_an_aware_utc_time(value: object, time_format: str,
                                             expected: datetime) -> None:
    parsed = parse_time(value, time_format)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_a_time_without_offset_is_taken_as_utc() -> None:
    naive = parse_time("2024-01-15T10:30:00", "iso8601")
    assert naive.tzinfo is UTC
    assert naive == datetime(2024, 1, 15, 10, 30, tzinfo=timezone(timedelta(0)))


@pytest.mark.parametrize(("value", "time_format", "problem"), [
    ("", "iso8601", "is empty"),
    (None, "epoch_seconds", "is empty"),
    ("yesterday", "iso8601", "'yesterday' is not an ISO 8601 time"),
    (1_705_314_600, "iso8601", "expected an ISO 8601 string"),
    ("15-01-2024", "%d/%m/%Y", "is not a '%d/%m/%Y' time"),
    ("soon", "epoch_seconds", "'soon' is not a number"),
    (True, "epoch_millis", "expected a number"),
    ("nan", "epoch_seconds", "not a finite number"),
    (10**20, "epoch_seconds", "out of range"),
    (1e20, "epoch_millis", "out of range"),
])
def test_a_value_that_is_not_a_time_in_the_format_is_refused(
    value: object, time_format: str, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_time(value, time_format)


def test_module_examples_hold() -> None:
    result = doctest.testmod(data_time)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(("source", "problem"), [
    ('time_column = "ts"\ntime_format = "unix"', "time_format must be one of"),
    ('label_time_column = "known_at"', "label_time_column needs a time_column"),
    ('time_format = "epoch_seconds"', "time_format is set but there is no time_column"),
])
def test_the_spec_refuses_time_keys_that_cannot_work(tmp_path: Path, source: str,
                                                     problem: str) -> None:
    with pytest.raises(SpecError, match=problem):
        load_spec(str(spec_with_source(tmp_path, source)))


def test_the_fixture_spec_names_its_time_columns() -> None:
    source = load_spec(str(FIXTURES / "meter.toml")).source
    assert source is not None
    assert (source.time_column, source.time_format, source.label_time_column) == (
        "read_at", "iso8601", "confirmed_at")


@pytest.fixture
def epoch_spec(tmp_path: Path) -> PipelineSpec:
    return load_spec(str(spec_with_source(
        tmp_path, 'time_column = "ts"\ntime_format = "epoch_seconds"\n'
                  'label_time_column = "known"')))


def row(line: int, **values: object) -> SourceRow:
    elec2 = {"period": "0.5", "nswprice": "0.05", "nswdemand": "0.4", "vicprice": "0.003",
             "vicdemand": "0.42", "transfer": "0.41", "class": "1"}
    return SourceRow(line, line - 1, {**elec2, **values})


def test_a_row_gives_its_event_and_label_time(epoch_spec: PipelineSpec) -> None:
    times = RowConverter(epoch_spec, "x.csv").times(row(2, ts="100", known="160"))
    assert times.event_time == datetime(1970, 1, 1, 0, 1, 40, tzinfo=UTC)
    assert times.label_time == datetime(1970, 1, 1, 0, 2, 40, tzinfo=UTC)


@pytest.mark.parametrize(("values", "problem"), [
    ({"ts": ""}, "x.csv line 7: event time (column 'ts'): is empty"),
    ({"ts": "later"}, "x.csv line 7: event time (column 'ts'): 'later' is not a number"),
    ({"known": "x"}, "x.csv line 7: label time (column 'known'): 'x' is not a number"),
    ({"known": "99"}, "x.csv line 7: label time (column 'known') 1970-01-01T00:01:39+00:00 "
                      "is earlier than the event time 1970-01-01T00:01:40+00:00"),
])
def test_a_bad_time_is_a_bad_row_naming_file_line_and_problem(
    epoch_spec: PipelineSpec, values: dict[str, object], problem: str
) -> None:
    converter = RowConverter(epoch_spec, "x.csv")
    with pytest.raises(BadRow, match=re.escape(problem)) as raised:
        converter.times(row(7, **{"ts": "100", "known": "160", **values}))
    assert raised.value.line == 7


def test_a_missing_time_key_in_a_jsonl_row_is_a_bad_row(epoch_spec: PipelineSpec) -> None:
    values = {"period": 0.5, "class": 1, "known": 5}
    with pytest.raises(BadRow, match="event time \\(column 'ts'\\): missing column 'ts'"):
        RowConverter(epoch_spec, "x.jsonl").times(SourceRow(3, 3, values))


def test_a_csv_header_without_the_time_columns_fails_before_the_first_row(
    tmp_path: Path, epoch_spec: PipelineSpec
) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("period,nswprice,nswdemand,vicprice,vicdemand,transfer,class,ts\n")
    converter = RowConverter(epoch_spec, str(path))
    with pytest.raises(ReplayError, match=r"no column\(s\) \['known'\]"):
        next(read_rows(path, converter.required_columns()))


def test_times_of_a_source_without_time_column_is_an_error() -> None:
    converter = RowConverter(load_spec("elec2"), "elec2.csv")
    assert not converter.keeps_data_time
    with pytest.raises(ReplayError, match="no time_column"):
        converter.times(row(2))
