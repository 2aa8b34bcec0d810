"""The anchors of ``streamml bench``: drain rates, ratios, the peers' step and the report rows."""

from __future__ import annotations

import doctest
import math
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from schemas.spec import load_spec
from services.cli.bench import anchors, drain, peer_core, peer_venv
from services.cli.bench.anchors import drain_rows, peer_rows, ratio_text, ratios, sustained_rows
from services.cli.bench.drain import decode_prediction
from services.cli.bench.inprocess import prepare, river_alone
from services.cli.bench.peer_core import PeerConfig, PredictLearn, Recipe, build_champion
from services.cli.bench.peer_venv import MARKER, ensure_peer_venv, requirements
from services.cli.bench.peers import champion_recipe, decode_peer_output, figures, peer_stream
from services.cli.bench.report import render
from services.cli.bench.stats import accuracy, drain_rate, ratio
from services.cli.bench.workload import workload_for
from services.model.estimators import build_estimator


@pytest.mark.parametrize("module", [anchors, drain, peer_core, peer_venv],
                         ids=lambda module: module.__name__)
def test_docstring_examples_run(module: ModuleType) -> None:
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0


def test_the_drain_rate_counts_the_outputs_between_ten_and_ninety_percent() -> None:
    # 1,000 outputs: a slow start (100 in 10 s), 800 at 400/s, slow stragglers
    times = [i / 10 for i in range(100)] + [10 + i / 400 for i in range(800)] \
        + [12 + i for i in range(100)]
    # output 100 (index 99) at 9.9 s, output 900 (index 899) at 10 + 799/400 s
    assert drain_rate(times) == pytest.approx(800 / (0.1 + 799 / 400))
    assert drain_rate(list(reversed(times))) == drain_rate(times)  # order does not matter


def test_the_drain_rate_is_nan_without_a_span() -> None:
    assert math.isnan(drain_rate([]))
    assert math.isnan(drain_rate([1.0, 1.0, 1.0, 1.0]))  # no time passed


def test_accuracy_judges_only_predictions_with_a_label() -> None:
    assert accuracy({"a": 1, "b": 0}, {"a": 1, "b": 1, "c": 0}) == 0.5
    assert accuracy({"a": None}, {"a": True}) is None
    assert accuracy({}, {}) is None


def test_ratios_to_missing_or_broken_figures_are_none() -> None:
    assert ratio(1.0, 4.0) == 0.25
    assert ratio(math.nan, 4.0) is None and ratio(1.0, math.nan) is None
    assert ratio(1.0, -1.0) is None


def test_ratio_text_shows_one_over_the_factor_below_one() -> None:
    assert ratio_text(0.25) == "0.25 (1 / 4.0)"
    assert ratio_text(0.0341) == "0.0341 (1 / 29.3)"
    assert ratio_text(2.0) == "2"
    assert ratio_text(math.nan) == "n/a"


def peer(rate: float, **versions: str) -> dict[str, Any]:
    return {"events": 45312, "outputs": 45312, "missing": 0, "events_per_second": rate,
            "accuracy": 0.8165, "load_before": [1.0, 1.0, 1.0],
            "load_after": [1.5, 1.0, 1.0],
            "report": {"versions": {**versions, "river": "0.26.1"}}}


def results(**extra: Any) -> dict[str, Any]:
    in_process = {"events": 45312, "events_per_second": 93322.0, "accuracy": 0.8165,
                  "models": ["logreg"], "load_before": [0.5, 0.4, 0.3],
                  "load_after": [0.6, 0.4, 0.3]}
    return {
        "when": "2026-12-04T18:00:00+00:00", "machine": "x86_64, 2 CPUs, Python 3.11.7",
        "river_version": "0.26.1", "spec": "elec2", "stream": "data/elec2.csv",
        "champion": "logreg", "champion_estimator": "StandardScaler | LogisticRegression()",
        "models": ["logreg"], "label_delay": 0, "river_delay": 1, "quick": False,
        "load": {"start": [0.5, 0.4, 0.3], "end": [0.7, 0.5, 0.3]},
        "in_process": {"river": in_process, "service_logic": in_process},
        "peers": {"confluent-kafka": peer(73886.0, **{"confluent-kafka": "2.16.1"}),
                  "quixstreams": peer(26628.0, quixstreams="3.28.1",
                                      **{"confluent-kafka": "2.12.2"})},
        "drain": peer(2516.0), **extra,
    }


def test_ratios_put_the_pipeline_over_river_and_each_peer() -> None:
    found = ratios(results(pipeline={"search": {"sustained_max": 841.0}}))
    assert found["drain/river"] == pytest.approx(2516 / 93322)
    assert found["drain/confluent-kafka"] == pytest.approx(2516 / 73886)
    assert found["drain/quixstreams"] == pytest.approx(2516 / 26628)
    assert found["sustained/quixstreams"] == pytest.approx(841 / 26628)


def test_the_table_has_a_row_per_peer_figure_and_per_ratio() -> None:
    document = results()
    rows = peer_rows(document)
    assert len(rows) == 4
    assert rows[0].startswith("| peer: plain confluent-kafka loop (consume(500), predict, learn,"
                              " produce; at-least-once; confluent-kafka 2.16.1)")
    assert rows[0].endswith("drain of 45,312 events: events/s | 73,886 |  | 1.00 → 1.50 |")
    assert "exactly-once; quixstreams 3.28.1, confluent-kafka 2.12.2)" in rows[2]
    assert rows[3] == "| peer: quixstreams application: accuracy of the champion | 81.65% |  |  |"
    drained = drain_rows(document)
    assert drained[0].startswith("| pipeline: drain of 45,312 events loaded before the services")
    assert "| 2,516 |" in drained[0]
    assert drained[3] == "| pipeline drain / plain confluent-kafka loop | 0.0341 (1 / 29.4) " \
                         "|  |  |"
    assert drained[4] == "| pipeline drain / quixstreams application | 0.0945 (1 / 10.6) |  |  |"
    assert sustained_rows(document) == []


def test_a_peer_that_could_not_run_says_why_and_its_ratio_is_na() -> None:
    document = results(peers={"confluent-kafka": peer(73886.0),
                              "quixstreams": {"error": "could not create the peers' "
                                              "virtualenv", "outputs": 0}})
    rows = peer_rows(document)
    assert rows[-1] == "| peer: quixstreams application: drain, events/s | not measured: " \
                       "could not create the peers' virtualenv |  |  |"
    assert drain_rows(document)[-1] == "| pipeline drain / quixstreams application | n/a |  |  |"


def test_skipped_peers_and_a_failed_drain_get_one_row_each() -> None:
    document = results(peers=None, peers_skipped="--no-peers",
                       drain={"error": "StackError: services not healthy"})
    assert peer_rows(document) == [
        "| peers (plain confluent-kafka loop, quixstreams) | not measured (--no-peers) |  |  |"]
    assert drain_rows(document) == [
        "| pipeline: drain, events/s | not measured: StackError: services not healthy |  |  |"]


def test_the_report_shows_the_anchors_next_to_the_sustained_rate() -> None:
    markdown = render(results(
        pipeline={"search": {"sustained_max": 841.0, "predictions_per_second_at_max": 841.0,
                             "steps": []}},
        ratio={"river": 841 / 93322, "service_logic": 841 / 93322}))
    table = markdown.split("\n\n")[2]
    assert table.index("peer: plain") < table.index("pipeline: drain") \
        < table.index("highest rate") < table.index("pipeline sustained / quixstreams")
    assert "| pipeline sustained / quixstreams application (drain) | 0.0316 (1 / 31.7) |" \
        in markdown
    assert anchors.NOTE in markdown


def test_outputs_decode_to_id_time_and_prediction() -> None:
    value = peer_core.output_bytes("e1", True)
    event_id, at, prediction = decode_peer_output(value) or ("", 0.0, None)
    assert (event_id, prediction) == ("e1", True) and at > 0
    assert decode_peer_output(b'{"other": 1}') is None
    decoded = decode_prediction(b'{"event_id": "d1.0", "prediction": false, '
                                b'"predicted_at": "2026-01-01T00:00:01+00:00"}')
    assert decoded == ("d1.0", datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC).timestamp(), False)


def test_figures_of_a_drained_stream() -> None:
    outputs = {f"e{i}": (i / 100, i % 2 == 0) for i in range(100)}
    labels = {f"e{i}": True for i in range(101)}
    found = figures(outputs, labels)
    assert found["outputs"] == 100 and found["missing"] == 1 and found["events"] == 101
    assert found["accuracy"] == 0.5
    assert found["events_per_second"] == pytest.approx(100.0)


def test_the_peers_build_the_champion_as_the_model_service_does() -> None:
    for name in ("elec2", "clicks"):
        spec = load_spec(name)
        recipe = champion_recipe(spec)
        assert Recipe.from_json(recipe.as_json()) == recipe
        assert repr(build_champion(recipe)) == repr(build_estimator(spec.models.champion))


def test_the_peers_step_gives_rivers_accuracy_on_the_same_stream() -> None:
    spec = load_spec("elec2")
    for river_delay in (1, 3):
        stream = peer_stream(spec, workload_for(spec, None), 1500, "t")
        loop = PredictLearn(build_champion(champion_recipe(spec)), river_delay)
        predictions = {key: loop.step(x, y) for key, _, x, y in stream.events}
        expected = river_alone(spec, prepare(workload_for(spec, None), 1500,
                                             datetime.now(UTC), 1000.0), river_delay)
        assert accuracy(predictions, stream.labels) == pytest.approx(expected.accuracy)


def test_a_peer_config_survives_the_command_line() -> None:
    config = PeerConfig({"bootstrap.servers": "127.0.0.1:9092"}, "in", "out", "g", 10, 2,
                        Recipe("river.linear_model", "LogisticRegression", {}, True), 30.0)
    assert PeerConfig.parse(config.dumps()) == config


def test_a_virtualenv_with_matching_pins_is_reused_without_running_pip(tmp_path: Path) -> None:
    wanted = requirements("3.28.1", "0.26.1")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").write_text("")
    (tmp_path / MARKER).write_text('{"requirements": ["quixstreams==3.28.1", "river==0.26.1", '
                                   '"orjson"]}')
    found = ensure_peer_venv(tmp_path, wanted, tmp_path / "log")
    assert found.python == tmp_path / "bin" / "python" and not found.created
    assert found.error is None and not (tmp_path / "log").exists()
