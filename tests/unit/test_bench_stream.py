"""The benchmark's stream on the wire and in process, and the summary of a profile."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.codec import decode
from schemas.events import Event, Label
from schemas.spec import load_spec
from services.cli.bench.inprocess import describe_model, prepare, river_alone, service_logic
from services.cli.bench.profiling import top_frames
from services.cli.bench.workload import (
    ClicksWorkload,
    FileWorkload,
    event_bytes,
    event_id,
    label_bytes,
    window_prefix,
    workload_for,
)

ELEC2_HEADER = "period,nswprice,nswdemand,vicprice,vicdemand,transfer,class\n"
WHEN = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def elec2_file(tmp_path: Path, rows: int) -> Path:
    lines = [ELEC2_HEADER]
    for n in range(rows):
        price = (n * 37 % 100) / 100
        lines.append(f"{n % 48 / 48:.4f},{price:.2f},0.4,0.003,0.42,0.41,{int(price > 0.5)}\n")
    path = tmp_path / "elec2.csv"
    path.write_text("".join(lines))
    return path


def test_events_and_labels_on_the_wire_keep_the_contracts(tmp_path: Path) -> None:
    workload = FileWorkload(load_spec("elec2"), elec2_file(tmp_path, 3))
    row = next(workload.rows())
    identifier = event_id("r1", 2, 7)
    assert identifier.startswith(window_prefix("r1", 2))
    event = decode(Event, event_bytes(identifier, WHEN, row))
    assert (event.event_id, event.event_time, event.entity) == (identifier, WHEN,
                                                                {"market": "nsw"})
    assert event.fields["nswprice"] == 0.0
    label = decode(Label, label_bytes(identifier, WHEN, row.label))
    assert (label.event_id, label.label_time, label.label) == (identifier, WHEN, 0)


def test_a_file_stream_cycles_through_its_rows(tmp_path: Path) -> None:
    workload = FileWorkload(load_spec("elec2"), elec2_file(tmp_path, 4))
    rows = list(itertools.islice(workload.rows(), 9))
    assert workload.size == 4
    assert rows[4] == rows[0] and rows[8] == rows[0] and rows[1] != rows[0]


def test_the_click_stream_sends_every_label_and_validates() -> None:
    spec = load_spec("clicks")
    rows = list(itertools.islice(ClicksWorkload(spec).rows(), 200))
    assert {row.label for row in rows} == {0, 1}
    for index, row in enumerate(rows[:20]):
        decode(Event, event_bytes(event_id("r", 0, index), WHEN, row))


def test_a_spec_without_a_stream_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            ) -> None:
    monkeypatch.chdir(tmp_path)  # no data/elec2.csv here
    with pytest.raises(ValueError, match="--data"):
        workload_for(load_spec("elec2"), None)


@pytest.mark.parametrize("river_delay", [1, 5])
def test_in_process_passes_learn_as_river_does(tmp_path: Path, river_delay: int) -> None:
    """The service logic (features + Learner, own delay queue) and River's own
    progressive_val_score agree on the champion's accuracy: the same model on the same inputs."""
    spec = load_spec("elec2")
    events = prepare(FileWorkload(spec, elec2_file(tmp_path, 400)), 400, WHEN, 1000.0)
    alone = river_alone(spec, events, river_delay)
    logic = service_logic(spec, events, river_delay)
    assert alone.events == logic.events == 400
    assert alone.accuracy is not None and 0.5 < alone.accuracy <= 1.0
    assert logic.accuracy == pytest.approx(alone.accuracy)
    assert logic.models == ["logreg"] and alone.events_per_second > 0


def test_in_process_with_aggregates_and_a_challenger() -> None:
    spec = load_spec("clicks")
    events = prepare(ClicksWorkload(spec), 300, WHEN, 1000.0)
    alone = river_alone(spec, events, 1)
    logic = service_logic(spec, events, 1)
    assert logic.models == ["logreg", "tree"] and alone.models == ["logreg"]
    assert logic.accuracy == pytest.approx(alone.accuracy)


def test_model_descriptions() -> None:
    spec = load_spec("clicks")
    assert describe_model(spec.models.champion) == "StandardScaler | LogisticRegression()"
    assert describe_model(spec.models.challengers[0]) == \
        "HoeffdingAdaptiveTreeClassifier(seed=42)"


def test_top_frames_rank_self_and_total_time_and_leave_out_the_main_loop() -> None:
    frames = [{"name": "run", "file": "/v/lib/python3.11/site-packages/services/loop.py",
               "line": 1},
              {"name": "predict", "file": "/repo/services/model/handler.py", "line": 20},
              {"name": "dumps", "file": "/usr/lib/python3.11/pickle.py", "line": 5}]
    document = {"shared": {"frames": frames}, "profiles": [
        {"name": "main", "samples": [[0, 1], [0, 1], [0, 1, 2], [0]], "weights": [0.01] * 4},
        {"name": "other", "samples": [[0, 2]], "weights": [0.01]},
    ]}
    summary = top_frames(document, limit=5)
    assert summary["samples"] == 5
    assert summary["self"] == [
        {"frame": "predict (services/model/handler.py:20)", "share": 0.4},
        {"frame": "dumps (pickle.py:5)", "share": 0.4},
        {"frame": "run (services/loop.py:1)", "share": 0.2},
    ]
    assert [entry["frame"] for entry in summary["total"]] == [
        "predict (services/model/handler.py:20)"]  # run: on every stack; dumps: not ours
    assert summary["threads"] == [{"frame": "main", "share": 0.8},
                                  {"frame": "other", "share": 0.2}]
    assert top_frames({"shared": {"frames": []}, "profiles": []})["samples"] == 0
