"""The supervisor's plan: what ``streamml up`` runs, and its JSON form."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from services.cli.stack import CONSUMERS, plan_stack
from services.cli.supervisor import METRICS_PORTS, SERVICE_MODULES, Plan, ServicePlan, state_file


def test_plan_round_trips_through_json() -> None:
    plan = Plan("/tmp/streamml-home", [
        ServicePlan("model", "services.model", 9103, {"STREAMML_TOPIC_PREFIX": "a."}),
        ServicePlan("drift", "services.drift", 9104),
    ])
    assert Plan.from_json(plan.to_json()) == plan


def test_plan_stack_runs_the_consumers_with_the_given_settings(tmp_path: Path) -> None:
    env = {"STREAMML_TOPIC_PREFIX": "t-", "STREAMML_KAFKA__BOOTSTRAP_SERVERS": "b:9092"}
    plan = plan_stack(tmp_path, env, with_producer=False)
    assert plan.home == str(tmp_path)
    assert [s.name for s in plan.services] == list(CONSUMERS)
    assert "producer" not in {s.name for s in plan.services}
    for service in plan.services:
        assert service.env == env
        assert service.module == SERVICE_MODULES[service.name]
        assert service.port == METRICS_PORTS[service.name]
    assert Plan.from_json(plan.to_json()) == plan


def test_plan_stack_can_add_the_producer_and_offset_ports(tmp_path: Path) -> None:
    plan = plan_stack(tmp_path, {}, with_producer=True, port_offset=1000)
    assert [s.name for s in plan.services] == [*CONSUMERS, "producer"]
    assert [s.port for s in plan.services] == [METRICS_PORTS[s.name] + 1000 for s in plan.services]
    assert len({s.port for s in plan.services}) == len(plan.services)


def test_each_service_gets_its_own_copy_of_the_environment(tmp_path: Path) -> None:
    env = {"STREAMML_LOG_LEVEL": "INFO"}
    plan = plan_stack(tmp_path, env, with_producer=False)
    plan.services[0].env["STREAMML_LOG_LEVEL"] = "DEBUG"
    assert env["STREAMML_LOG_LEVEL"] == "INFO"
    assert plan.services[1].env["STREAMML_LOG_LEVEL"] == "INFO"


def test_every_planned_module_is_runnable_with_python_m() -> None:
    for module in SERVICE_MODULES.values():
        assert importlib.util.find_spec(f"{module}.__main__") is not None, module


def test_state_file_lives_under_the_home(tmp_path: Path) -> None:
    assert state_file(tmp_path) == tmp_path / "run" / "supervisor.json"
