"""``streamml evaluate-drift`` end to end on a short stream, in process (no broker): the click
scenario through the features, model and drift logic, its alerts scored against its truth."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from schemas.spec import load_spec
from services.cli.evaluate_drift import DEFAULT_START
from services.cli.main import main
from services.cli.pipeline_in_process import run_in_process
from services.producer.scenarios import ClicksScenario
from services.producer.scenarios.timeline import parse_timeline

BASELINE = 8000
SHORT_TIMELINE = f"""
[[phases]]
name = "baseline"
kind = "stationary"
events = {BASELINE}

[[phases]]
name = "fewer-clicks"
kind = "label_shift"
events = 3000
intercept_shift = -1.0

[[phases]]
name = "layout-change"
kind = "concept_drift"
events = 2500
concept = {{ position = 0.2, device = {{ mobile = -0.8, tablet = 0.8 }} }}
"""
"""The built-in timeline's label shift and abrupt concept drift, after a shorter baseline."""
LAYOUT_AT = BASELINE + 3000


def test_the_abrupt_concept_drift_of_a_short_run_is_scored_as_detected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    timeline = tmp_path / "short.toml"
    timeline.write_text(SHORT_TIMELINE)
    report = tmp_path / "out" / "drift.json"
    code = main(["evaluate-drift", "--timeline", str(timeline), "--seed", "3",
                 "--json", str(report)])
    assert code == 0

    document = orjson.loads(report.read_bytes())
    assert (document["spec"], document["seeds"], document["rate"]) == ("clicks", [3], 50.0)
    [run] = document["runs"]
    assert run["events"] == LAYOUT_AT + 2500  # the timeline's length by default
    assert run["labels"] > 0
    assert all({"kind", "detector", "target", "index", "time"} <= set(alert)
               for alert in run["alerts"])
    label_shift, drift = document["summary"]
    assert (label_shift["phase"], label_shift["kind"], label_shift["start_index"]) == (
        "fewer-clicks", "label", BASELINE)
    assert (drift["phase"], drift["kind"], drift["transition"]) == (
        "layout-change", "concept", "abrupt")
    assert (drift["start_index"], drift["reached"], drift["detected"]) == (LAYOUT_AT, 1, 1)
    [delay] = drift["delays_events"]
    assert 0 <= delay < 2500
    [seconds] = drift["delays_seconds"]
    assert seconds == pytest.approx(delay / 50.0)
    assert drift["detectors"][0].startswith("ADWIN on error:")
    scored = run["score"]
    assert scored["stationary_events"] == BASELINE
    assert scored["false_alarms"] == len(scored["false_alarm_alerts"])

    printed = capsys.readouterr().out
    assert "layout-change (abrupt)" in printed
    assert "false alarms in stationary phases" in printed


def test_an_in_process_run_repeats_with_its_seed() -> None:
    spec = load_spec("clicks")
    timeline = parse_timeline({"phases": [
        {"name": "baseline", "kind": "stationary", "events": 1000},
        {"name": "tablets", "kind": "covariate_shift", "events": 2000,
         "device_mix": {"tablet": 1.0}},
    ]})

    def alerts() -> list[tuple[str, str, int]]:
        run = run_in_process(spec, ClicksScenario(seed=4, timeline=timeline), 3000, 50.0,
                             DEFAULT_START)
        assert run.events == 3000
        assert [p.index for p in run.alerts] == sorted(p.index for p in run.alerts)
        return [(p.alert.kind, p.alert.target, p.index) for p in run.alerts]

    first = alerts()
    assert ("covariate", "feature:device") in {(kind, target) for kind, target, _ in first}
    assert first == alerts()
