"""The supervisor's plan: what ``streamml up`` runs (the services and, when installed,
Prometheus with a configuration generated for the planned ports), and its JSON form."""

from __future__ import annotations

import argparse
import http.server
import importlib.util
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from services.cli import prometheus
from services.cli.main import _monitoring, build_parser
from services.cli.prometheus import (
    DEPLOY_DIR,
    RULES_DIR,
    PrometheusOptions,
    config_path,
    interval_from_seconds,
    write_config,
)
from services.cli.stack import CONSUMERS, plan_stack, port_is_free, probe_health
from services.cli.supervisor import (
    METRICS_PORTS,
    SERVICE_MODULES,
    Plan,
    ServicePlan,
    Supervisor,
    state_file,
)
from services.common.runtime import StopSignal


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


# --- Prometheus in the plan ----------------------------------------------------------------


def _options() -> PrometheusOptions:
    return PrometheusOptions("/usr/bin/prometheus", scrape_interval="1s")


def test_plan_stack_adds_prometheus_last_with_its_files_under_the_home(tmp_path: Path) -> None:
    plan = plan_stack(tmp_path, {"STREAMML_TOPIC_PREFIX": "t-"}, with_producer=True,
                      monitoring=_options())
    assert [s.name for s in plan.services] == [*CONSUMERS, "producer", "prometheus"]
    server = plan.services[-1]
    assert server.port == prometheus.PORT == 9090
    assert server.argv[0] == "/usr/bin/prometheus"
    flags = dict(arg.split("=", 1) for arg in server.argv[1:])
    assert flags["--config.file"] == str(config_path(tmp_path.resolve()))
    assert Path(flags["--storage.tsdb.path"]).is_relative_to(tmp_path.resolve())
    assert flags["--web.listen-address"] == "127.0.0.1:9090"
    assert server.health_path == "/-/ready"
    assert Plan.from_json(plan.to_json()) == plan


def test_port_offset_moves_prometheus_with_the_services(tmp_path: Path) -> None:
    plan = plan_stack(tmp_path, {}, with_producer=False, port_offset=1000,
                      monitoring=_options())
    server = plan.services[-1]
    assert server.port == 10090
    assert "--web.listen-address=127.0.0.1:10090" in server.argv
    assert len({s.port for s in plan.services}) == len(plan.services)


def test_without_monitoring_no_prometheus_runs(tmp_path: Path) -> None:
    plan = plan_stack(tmp_path, {}, with_producer=True)
    assert "prometheus" not in {s.name for s in plan.services}
    assert all(s.argv == [] and s.health_path == "/health" for s in plan.services)


def test_generated_config_scrapes_the_planned_ports(tmp_path: Path) -> None:
    plan = plan_stack(tmp_path, {}, with_producer=True, port_offset=500,
                      monitoring=_options())
    path = write_config(tmp_path, plan.services, 9590, _options())
    config = yaml.safe_load(path.read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"]
               for job in config["scrape_configs"]}
    assert targets == {"prometheus": ["127.0.0.1:9590"],
                       **{s.name: [f"127.0.0.1:{s.port}"] for s in plan.services
                          if s.name != "prometheus"}}
    assert config["global"] == {"scrape_interval": "1s", "evaluation_interval": "1s"}
    assert config["rule_files"] == [str(RULES_DIR.resolve() / "*.yml")]


def test_generated_config_matches_the_committed_local_config_at_default_ports(
    tmp_path: Path,
) -> None:
    plan = plan_stack(tmp_path, {}, with_producer=True, monitoring=_options())
    generated = yaml.safe_load(
        write_config(tmp_path, plan.services, prometheus.PORT, _options()).read_text())
    committed = yaml.safe_load((DEPLOY_DIR / "prometheus.local.yml").read_text())

    def jobs(config: dict[str, Any]) -> dict[str, list[str]]:
        return {job["job_name"]: job["static_configs"][0]["targets"]
                for job in config["scrape_configs"]}

    assert jobs(generated) == jobs(committed)
    committed_rules = [str((DEPLOY_DIR / pattern).resolve()) for pattern in committed["rule_files"]]
    assert generated["rule_files"] == committed_rules


def test_promtool_accepts_the_generated_config_and_finds_the_rules(tmp_path: Path) -> None:
    binary = shutil.which("promtool")
    assert binary, "promtool is needed: apt-get install prometheus (scripts/install.sh does)"
    plan = plan_stack(tmp_path, {}, with_producer=True, monitoring=_options())
    path = write_config(tmp_path, plan.services, prometheus.PORT, _options())
    result = subprocess.run([binary, "check", "config", str(path)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_scrape_intervals_become_prometheus_durations() -> None:
    assert interval_from_seconds(5) == "5s"
    assert interval_from_seconds(1.0) == "1s"
    assert interval_from_seconds(0.5) == "500ms"
    with pytest.raises(ValueError, match="positive"):
        interval_from_seconds(0)
    with pytest.raises(ValueError, match="not a duration"):
        PrometheusOptions("prometheus", scrape_interval="5 seconds")


# --- The supervisor runs programs other than our modules -------------------------------------


def test_supervisor_runs_a_plans_own_argv_and_records_its_health_path(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    program = ServicePlan(
        "sleeper", "sleeper", 1,
        argv=[sys.executable, "-c",
              f"import pathlib, time; pathlib.Path({str(marker)!r}).touch(); time.sleep(60)"],
        health_path="/-/ready", page="/",
    )
    stop = StopSignal()
    supervisor = Supervisor(Plan(str(tmp_path), [program]), stop)
    runner = threading.Thread(target=supervisor.run)
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while not (marker.exists() and state_file(tmp_path).exists()):
            assert time.monotonic() < deadline, "the program did not start"
            time.sleep(0.05)
        state = orjson.loads(state_file(tmp_path).read_bytes())
        assert state["services"]["sleeper"]["health_path"] == "/-/ready"
        assert state["services"]["sleeper"]["page"] == "/"
    finally:
        stop.set()
        runner.join(30)
    assert not runner.is_alive()
    assert not state_file(tmp_path).exists()


def test_a_service_done_with_its_work_is_not_restarted_but_a_crashed_one_is(
    tmp_path: Path,
) -> None:
    """Exit 0 of a finite service (the producer at its event count) ends it; other exits and
    services that should run forever are restarted."""
    def counting(name: str, code: int, restart_after_success: bool) -> ServicePlan:
        runs = tmp_path / f"{name}.runs"
        return ServicePlan(
            name, name, 1, restart_after_success=restart_after_success,
            # The count is written beside and renamed into place: the test reading it while it
            # is written never sees an empty file.
            argv=[sys.executable, "-c", f"import pathlib, sys; p = pathlib.Path({str(runs)!r}); "
                  f"t = p.with_suffix('.tmp'); "
                  f"t.write_text(str(int(p.read_text()) + 1) if p.exists() else '1'); "
                  f"t.replace(p); sys.exit({code})"],
        )

    plan = Plan(str(tmp_path), [counting("finite", 0, False), counting("crashing", 1, False),
                                counting("forever", 0, True)])
    stop = StopSignal()
    runner = threading.Thread(target=Supervisor(plan, stop).run)
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while not all((tmp_path / f"{name}.runs").exists() and
                      int((tmp_path / f"{name}.runs").read_text()) >= 2
                      for name in ("crashing", "forever")):
            assert time.monotonic() < deadline, "crashed or endless services were not restarted"
            time.sleep(0.05)
    finally:
        stop.set()
        runner.join(30)
    assert (tmp_path / "finite.runs").read_text() == "1"


def test_probe_health_of_a_plain_ready_endpoint() -> None:
    class Ready(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/-/ready" else 404)
            self.end_headers()
            self.wfile.write(b"Prometheus Server is Ready.\n")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        assert probe_health(port, "/-/ready") == {"ok": True, "status": 200}
        assert probe_health(port, "/-/missing") == {"ok": False, "status": 404}
    finally:
        server.shutdown()
        server.server_close()
    assert port_is_free(port)
    assert probe_health(port, "/-/ready") is None


# --- Whether `streamml up` runs Prometheus ---------------------------------------------------


def _up_args(*flags: str) -> argparse.Namespace:
    return build_parser().parse_args(["up", *flags])


def test_up_says_so_when_prometheus_is_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("STREAMML_HOME", str(tmp_path / "home"))
    assert _monitoring(_up_args()) is None
    assert "prometheus is not installed" in capsys.readouterr().out


def _fake_prometheus_on_path(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    binary = folder / "prometheus"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))
    return binary


def test_up_runs_the_prometheus_on_path_unless_told_not_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    binary = _fake_prometheus_on_path(tmp_path, monkeypatch)
    monkeypatch.setenv("STREAMML_HOME", str(tmp_path / "home"))
    offset = next(o for o in range(20000, 30000, 7) if port_is_free(prometheus.PORT + o))
    options = _monitoring(_up_args("--port-offset", str(offset), "--scrape-interval", "2"))
    assert options == PrometheusOptions(str(binary), scrape_interval="2s")
    assert _monitoring(_up_args("--no-prometheus")) is None
    assert capsys.readouterr().out == ""


def test_up_leaves_prometheus_out_when_its_port_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    _fake_prometheus_on_path(tmp_path, monkeypatch)
    monkeypatch.setenv("STREAMML_HOME", str(tmp_path / "home"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        offset = taken.getsockname()[1] - prometheus.PORT
        assert _monitoring(_up_args("--port-offset", str(offset))) is None
    assert f"port {prometheus.PORT + offset} is taken" in capsys.readouterr().out
