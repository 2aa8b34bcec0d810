"""``streamml up --predictors N``: N predictor replicas serve, the model service only learns."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from services.cli.main import _replicas, build_parser
from services.cli.stack import CONSUMERS, plan_stack
from services.cli.supervisor import METRICS_PORTS, SERVICE_MODULES, Plan

ENV = {"STREAMML_TOPIC_PREFIX": "t-"}
LAYOUT, REPLICA = "STREAMML_MODEL__LAYOUT", "STREAMML_PREDICTOR__REPLICA"


def test_predictors_are_planned_after_the_consumers(tmp_path: Path) -> None:
    plan = plan_stack(tmp_path, ENV, with_producer=True, predictors=3)
    assert [s.name for s in plan.services] == [
        *CONSUMERS, "producer", "predictor-0", "predictor-1", "predictor-2"]
    assert Plan.from_json(plan.to_json()) == plan


def test_each_predictor_has_its_port_module_and_replica_number(tmp_path: Path) -> None:
    plan = plan_stack(tmp_path, ENV, with_producer=False, predictors=3)
    replicas = [s for s in plan.services if s.name.startswith("predictor-")]
    assert [s.port for s in replicas] == [9110, 9111, 9112]
    assert {s.module for s in replicas} == {SERVICE_MODULES["predictor"]}
    assert [s.env for s in replicas] == [{**ENV, REPLICA: str(i)} for i in range(3)]
    assert all(s.restart_after_success for s in replicas)


def test_the_port_offset_moves_the_predictors_ports_too(tmp_path: Path) -> None:
    plan = plan_stack(tmp_path, ENV, with_producer=False, port_offset=1000, predictors=2)
    ports = {s.name: s.port for s in plan.services}
    assert (ports["predictor-0"], ports["predictor-1"]) == (10110, 10111)
    assert ports["model"] == METRICS_PORTS["model"] + 1000


def test_only_the_model_service_learns_only_with_predictors(tmp_path: Path) -> None:
    plan = plan_stack(tmp_path, ENV, with_producer=True, predictors=1)
    layouts = {s.name: s.env.get(LAYOUT) for s in plan.services}
    assert layouts == {name: ("learner" if name == "model" else None) for name in layouts}
    assert {s.name: s.env.get(REPLICA) for s in plan.services if s.name != "predictor-0"} == {
        s.name: None for s in plan.services if s.name != "predictor-0"}


def test_without_predictors_the_model_service_keeps_its_layout(tmp_path: Path) -> None:
    plan = plan_stack(tmp_path, ENV, with_producer=True, predictors=0)
    assert [s.name for s in plan.services] == [*CONSUMERS, "producer"]
    assert all(s.env == ENV for s in plan.services)


def test_the_given_environment_is_not_changed(tmp_path: Path) -> None:
    env = dict(ENV)
    plan_stack(tmp_path, env, with_producer=False, predictors=2)
    assert env == ENV


def test_sixty_four_predictors_get_distinct_ports(tmp_path: Path) -> None:
    plan = plan_stack(tmp_path, ENV, with_producer=True, predictors=64)
    ports = [s.port for s in plan.services]
    assert len(set(ports)) == len(ports)
    assert max(ports) == 9110 + 63


@pytest.mark.parametrize("text", ["0", "1", "64"])
def test_replicas_accepts_zero_to_sixty_four(text: str) -> None:
    assert _replicas(text) == int(text)


@pytest.mark.parametrize("text", ["-1", "65", "two", "1.5", ""])
def test_replicas_refuses_anything_else(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="0 to 64"):
        _replicas(text)


def test_up_takes_the_number_of_predictors() -> None:
    parser = build_parser()
    assert parser.parse_args(["up", "--predictors", "4"]).predictors == 4
    assert parser.parse_args(["up"]).predictors == 0


def test_up_refuses_a_bad_number_of_predictors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["up", "--predictors", "100"])
    assert "expected 0 to 64 replicas" in capsys.readouterr().err
