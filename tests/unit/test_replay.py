"""Replayed files: CSV and JSONL rows become typed events and labels as the spec's [source]
says, and a row that cannot is an error naming the file and the line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.codec import encode
from schemas.events import Event, LabelValue
from schemas.spec import PipelineSpec, load_spec
from services.features.validation import Limits, validate_event
from services.producer.replay import (
    BadRow,
    ReplayError,
    RowConverter,
    read_rows,
    source_of,
)

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)

SHOP = """\
name = "shop"
entity_keys = ["user", "region"]

[fields.device]
type = "categorical"
values = ["mobile", "desktop"]

[fields.items]
type = "int"
min = 0

[fields.price]
type = "float"
min = 0

[fields.member]
type = "bool"

[fields.coupon]
type = "float"
required = false

[label]
type = "multiclass"
feedback_window_seconds = 60

[models.champion]
name = "tree"
estimator = "tree.HoeffdingTreeClassifier"

[source]
label_column = "outcome"
id_column = "id"
entity = { region = "eu" }
entity_columns = { user = "customer" }
"""


@pytest.fixture(scope="module")
def elec2() -> PipelineSpec:
    return load_spec("elec2")


@pytest.fixture
def shop(tmp_path: Path) -> PipelineSpec:
    path = tmp_path / "shop.toml"
    path.write_text(SHOP)
    return load_spec(str(path))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def convert_all(path: Path, spec: PipelineSpec) -> list[tuple[Event, LabelValue]]:
    converter = RowConverter(spec, str(path))
    return [converter.convert(row, NOW) for row in read_rows(path, converter.required_columns())]


def bad_row(path: Path, spec: PipelineSpec) -> BadRow:
    with pytest.raises(BadRow) as raised:
        convert_all(path, spec)
    return raised.value


def test_csv_rows_become_events_and_labels(tmp_path: Path, elec2: PipelineSpec) -> None:
    path = write(tmp_path, "few.csv", (
        "period,nswprice,nswdemand,vicprice,vicdemand,transfer,class\n"
        "0.0,0.056443,0.439155,0.003467,0.422915,0.414912,1\n"
        "1,0,1,0.5,0.25,0.125,0\n"
    ))
    (first, first_label), (second, second_label) = convert_all(path, elec2)
    assert first.event_id == "elec2-1"
    assert second.event_id == "elec2-2"
    assert first.entity == {"market": "nsw"}
    assert first.event_time == NOW
    assert first.fields == {"period": 0.0, "nswprice": 0.056443, "nswdemand": 0.439155,
                            "vicprice": 0.003467, "vicdemand": 0.422915, "transfer": 0.414912}
    assert second.fields["period"] == 1.0
    assert all(isinstance(value, float) for value in second.fields.values())
    assert (first_label, second_label) == (1, 0)
    assert isinstance(first_label, int)


def test_jsonl_rows_take_ids_entities_and_types_from_the_spec(
    tmp_path: Path, shop: PipelineSpec
) -> None:
    path = write(tmp_path, "orders.jsonl", "\n".join([
        '{"id": "o-1", "customer": "c-9", "device": "mobile", "items": 3, "price": 9.5,'
        ' "member": true, "coupon": null, "outcome": "kept", "note": "ignored"}',
        "",
        '{"id": 42, "customer": 7, "device": "desktop", "items": "2", "price": "10",'
        ' "member": "no", "outcome": 2}',
    ]) + "\n")
    (first, first_label), (second, second_label) = convert_all(path, shop)
    assert first.event_id == "o-1"
    assert first.entity == {"user": "c-9", "region": "eu"}
    assert first.fields == {"device": "mobile", "items": 3, "price": 9.5, "member": True,
                            "coupon": None}
    assert first_label == "kept"
    assert second.event_id == "42"
    assert second.entity == {"user": "7", "region": "eu"}
    assert second.fields == {"device": "desktop", "items": 2, "price": 10.0, "member": False}
    assert isinstance(second.fields["price"], float)
    assert second_label == 2


def test_csv_values_are_parsed_to_the_field_types(tmp_path: Path, shop: PipelineSpec) -> None:
    path = write(tmp_path, "orders.csv", (
        "id,customer,device,items,price,member,coupon,outcome\n"
        "o-1,c-1,mobile,4.0,12,TRUE,,1\n"
        "o-2,c-2,desktop,0,0.5,0,2.5,returned\n"
    ))
    (first, first_label), (second, second_label) = convert_all(path, shop)
    assert first.fields == {"device": "mobile", "items": 4, "price": 12.0, "member": True,
                            "coupon": None}
    assert isinstance(first.fields["items"], int)
    assert second.fields["coupon"] == 2.5
    assert (first_label, second_label) == (1, "returned")


def test_a_regression_label_is_a_float(tmp_path: Path, elec2: PipelineSpec) -> None:
    regression = elec2.model_copy(
        update={"label": elec2.label.model_copy(update={"type": "regression"})}
    )
    path = write(tmp_path, "one.csv", (
        "period,nswprice,nswdemand,vicprice,vicdemand,transfer,class\n"
        "0,0,0,0,0,0,1\n"
    ))
    [(_, label)] = convert_all(path, regression)
    assert label == 1.0
    assert isinstance(label, float)


@pytest.mark.parametrize(("line", "problem"), [
    ("0.1,abc,0.4,0.003,0.42,0.41,1", "field 'nswprice': 'abc' is not a number"),
    ("0.1,nan,0.4,0.003,0.42,0.41,1", "not a finite number"),
    ("0.1,,0.4,0.003,0.42,0.41,1", "field 'nswprice' is empty"),
    ("0.1,0.2,0.4,0.003,0.42,0.41,", "label (column 'class') is empty"),
    ("0.1,0.2,0.4,0.003,0.42,0.41", "6 values for 7 columns"),
    ("0.1,0.2,0.4,0.003,0.42,0.41,1,9", "8 values for 7 columns"),
])
def test_a_bad_csv_row_names_the_file_and_line(
    tmp_path: Path, elec2: PipelineSpec, line: str, problem: str
) -> None:
    path = write(tmp_path, "broken.csv", (
        "period,nswprice,nswdemand,vicprice,vicdemand,transfer,class\n"
        "0,0,0,0,0,0,1\n"
        f"{line}\n"
    ))
    error = bad_row(path, elec2)
    assert (error.path, error.line) == (str(path), 3)
    assert problem in str(error)
    assert str(error).startswith(f"{path} line 3: ")


@pytest.mark.parametrize(("text", "problem"), [
    ('{"id": "o-1", "device": "mobile"', "not valid JSON"),
    ('[1, 2]', "expected a JSON object, got list"),
    ('{"id": "o-1", "customer": "c", "device": "mobile", "items": 1, "member": true,'
     ' "outcome": 1}', "missing column 'price'"),
    ('{"id": "o-1", "customer": "c", "device": "mobile", "items": 1.5, "price": 1,'
     ' "member": true, "outcome": 1}', "field 'items': expected an integer"),
    ('{"id": "o-1", "customer": "c", "device": "mobile", "items": 1, "price": 1,'
     ' "member": "maybe", "outcome": 1}', "field 'member': expected a bool"),
    ('{"id": "", "customer": "c", "device": "mobile", "items": 1, "price": 1,'
     ' "member": true, "outcome": 1}', "event id (column 'id') is empty"),
    ('{"id": "o-1", "customer": null, "device": "mobile", "items": 1, "price": 1,'
     ' "member": true, "outcome": 1}', "entity 'user' (column 'customer')"),
    ('{"id": "' + "x" * 300 + '", "customer": "c", "device": "mobile", "items": 1,'
     ' "price": 1, "member": true, "outcome": 1}', "event_id: String should have at most"),
])
def test_a_bad_jsonl_line_names_the_file_and_line(
    tmp_path: Path, shop: PipelineSpec, text: str, problem: str
) -> None:
    path = write(tmp_path, "orders.jsonl", f"\n{text}\n")
    error = bad_row(path, shop)
    assert error.line == 2
    assert str(error).startswith(f"{path} line 2: ")
    assert problem in str(error)


def test_a_header_without_a_needed_column_fails_before_the_first_row(
    tmp_path: Path, elec2: PipelineSpec
) -> None:
    path = write(tmp_path, "short.csv", "period,nswprice,class\n0,0,1\n")
    with pytest.raises(ReplayError, match=r"short.csv line 1: .*'nswdemand'"):
        convert_all(path, elec2)


def test_unknown_suffixes_missing_files_and_specs_without_source_are_clear_errors(
    tmp_path: Path, elec2: PipelineSpec
) -> None:
    with pytest.raises(ReplayError, match=r"\.parquet.*\.csv, \.jsonl, \.ndjson"):
        read_rows(tmp_path / "data.parquet")
    with pytest.raises(ReplayError, match="no such file"):
        read_rows(tmp_path / "absent.csv")
    with pytest.raises(ReplayError, match="empty file"):
        list(read_rows(write(tmp_path, "empty.csv", "")))
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("period,class\n0.5,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ReplayError, match="not UTF-8 text"):
        list(read_rows(latin1))
    no_source = elec2.model_copy(update={"source": None})
    with pytest.raises(ReplayError, match=r"no \[source\] section"):
        source_of(no_source)


def test_ndjson_is_read_as_jsonl(tmp_path: Path) -> None:
    path = write(tmp_path, "x.ndjson", '{"a": 1}\n\n{"a": 2}\n')
    rows = list(read_rows(path))
    assert [(row.line, row.number, row.values) for row in rows] == [
        (1, 1, {"a": 1}), (3, 2, {"a": 2})
    ]


def test_a_clicks_file_replays_into_valid_clicks_events(tmp_path: Path) -> None:
    spec = load_spec("clicks")
    path = write(tmp_path, "clicks.csv", (
        "user,item,device,hour,price,position,clicked\n"
        "u1,i3,mobile,14,12.5,2,1\n"
    ))
    [(event, label)] = convert_all(path, spec)
    assert event.entity == {"user": "u1", "item": "i3"}
    assert validate_event(encode(event), spec, NOW, Limits()) == event
    assert label == 1


def test_every_elec2_row_converts_and_validates(elec2: PipelineSpec) -> None:
    path = REPO / "data" / "elec2.csv"
    converter = RowConverter(elec2, str(path))
    labels: set[LabelValue] = set()
    count = 0
    now = datetime.now(UTC)
    for row in read_rows(path, converter.required_columns()):
        event, label = converter.convert(row, now)
        validate_event(encode(event), elec2, now, Limits())
        labels.add(label)
        count += 1
    assert count == 45_312
    assert labels == {0, 1}
