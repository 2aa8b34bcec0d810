"""Producer options, the scenario they build, and ``streamml produce`` refusing bad input."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.cli.main import build_parser, main
from services.producer.scenarios import ClicksScenario, TimelineError
from services.producer.scenarios.labels import ExponentialDelay, UniformDelay
from services.producer.service import build_scenario
from services.producer.settings import ProducerOptions, ProducerSettings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.upper().startswith("STREAMML_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("STREAMML_HOME", str(tmp_path / "home"))
    yield


def test_defaults_are_a_stationary_run_with_labels_on_time() -> None:
    options = ProducerOptions()
    assert options.timeline is None and options.truth_path is None
    assert options.label_delay == UniformDelay(low=0.2, high=3.0)
    assert options.late_share == options.lost_share == 0.0
    scenario = build_scenario(options)
    assert isinstance(scenario, ClicksScenario) and scenario.timeline is None


def test_options_build_the_scenario_they_describe() -> None:
    scenario = build_scenario(ProducerOptions(
        seed=3, timeline="clicks-drift", late_share=0.1, lost_share=0.2,
        label_delay={"distribution": "exponential", "mean": 4}, explicit_negatives=True,
    ))
    assert isinstance(scenario, ClicksScenario)
    assert scenario.seed == 3 and scenario.explicit_negatives
    assert scenario.timeline is not None and scenario.timeline.name == "clicks-drift"
    assert scenario.labels.delay == ExponentialDelay(mean=4.0)
    assert (scenario.labels.late_share, scenario.labels.lost_share) == (0.1, 0.2)


def test_options_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMML_PRODUCER__TIMELINE", "clicks-drift")
    monkeypatch.setenv("STREAMML_PRODUCER__LATE_SHARE", "0.05")
    monkeypatch.setenv("STREAMML_PRODUCER__LABEL_DELAY__DISTRIBUTION", "lognormal")
    monkeypatch.setenv("STREAMML_PRODUCER__TRUTH_PATH", "/tmp/run/truth.json")
    options = ProducerSettings().producer
    assert options.timeline == "clicks-drift" and options.late_share == 0.05
    assert options.label_delay.distribution == "lognormal"
    assert options.truth_path == Path("/tmp/run/truth.json")


@pytest.mark.parametrize("changes", [
    {"late_share": 1.5}, {"lost_share": -0.1}, {"late_share": 0.6, "lost_share": 0.6},
    {"label_delay": {"distribution": "gamma"}},
    {"label_delay": {"distribution": "exponential", "mean": 0}},
])
def test_bad_options_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ProducerOptions.model_validate(changes)


def test_an_unknown_timeline_is_refused_when_the_scenario_is_built() -> None:
    with pytest.raises(TimelineError, match="no timeline 'nope'"):
        build_scenario(ProducerOptions(timeline="nope"))


def test_produce_takes_the_new_flags() -> None:
    args = build_parser().parse_args([
        "produce", "--scenario", "clicks", "--rate", "200", "--duration", "5",
        "--timeline", "clicks-drift", "--truth", "out/truth.json", "--late-share", "0.1",
        "--lost-share", "0.05", "--label-delay", "exponential:2", "--explicit-negatives",
    ])
    assert (args.timeline, args.truth, args.late_share, args.lost_share) == (
        "clicks-drift", Path("out/truth.json"), 0.1, 0.05)
    assert args.label_delay == "exponential:2" and args.explicit_negatives


@pytest.mark.parametrize(("flags", "message"), [
    (["--timeline", "nope"], "no timeline 'nope'"),
    (["--late-share", "0.7", "--lost-share", "0.5"], "more than 1"),
    (["--label-delay", "gamma:1"], "label delay 'gamma:1'"),
])
def test_produce_refuses_bad_input_before_connecting(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["produce", *flags]) == 2
    assert message in capsys.readouterr().err
