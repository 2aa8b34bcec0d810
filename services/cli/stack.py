"""``streamml up|down|status``: the pipeline as supervised local processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from services.cli import prometheus
from services.cli.local_kafka.process import alive
from services.cli.supervisor import (
    METRICS_PORTS,
    PREDICTOR_PORT,
    SERVICE_MODULES,
    Plan,
    ServicePlan,
    state_file,
)

CONSUMERS = ("features", "model", "drift", "metrics-sink")


class StackError(RuntimeError):
    """The pipeline could not be brought up or down."""


def plan_stack(home: Path, env: dict[str, str], with_producer: bool,
               port_offset: int = 0,
               monitoring: prometheus.PrometheusOptions | None = None,
               predictors: int = 0) -> Plan:
    """Which services to run, with ``env`` (``STREAMML_*`` settings) passed to each.

    With ``predictors`` > 0, the scaled layout: that many predictor replicas (``predictor-0``,
    ...) serve and the model service only learns (``STREAMML_MODEL__LAYOUT=learner``). With
    ``monitoring``, Prometheus runs too, on port 9090 + ``port_offset``; its configuration is
    written by :func:`services.cli.prometheus.write_config` before :func:`up`.
    """
    names = [*CONSUMERS, *(["producer"] if with_producer else [])]
    services = [
        ServicePlan(name, SERVICE_MODULES[name], METRICS_PORTS[name] + port_offset,
                    {**env, **({"STREAMML_MODEL__LAYOUT": "learner"}
                               if name == "model" and predictors else {})},
                    restart_after_success=name != "producer")
        for name in names
    ]
    services += [predictor_plan(replica, env, port_offset) for replica in range(predictors)]
    if monitoring is not None:
        services.append(prometheus.service_plan(home, prometheus.PORT + port_offset, monitoring))
    return Plan(str(home), services)


def predictor_plan(replica: int, env: dict[str, str], port_offset: int = 0) -> ServicePlan:
    """Predictor replica number ``replica``: its own name, port and transactional id."""
    return ServicePlan(f"predictor-{replica}", SERVICE_MODULES["predictor"],
                       PREDICTOR_PORT + replica + port_offset,
                       {**env, "STREAMML_PREDICTOR__REPLICA": str(replica)})


def read_state(home: Path) -> dict[str, Any] | None:
    """The running supervisor's state, or None when none runs (stale state is removed)."""
    path = state_file(home)
    try:
        state: dict[str, Any] = orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    if not alive(int(state["pid"])):
        path.unlink(missing_ok=True)
        return None
    return state


def up(plan: Plan, timeout: float = 90.0) -> dict[str, Any]:
    """Start the supervisor (unless one runs) and wait until every service is healthy."""
    home = Path(plan.home)
    if read_state(home) is None:
        (home / "logs").mkdir(parents=True, exist_ok=True)
        log = (home / "logs" / "supervisor.log").open("ab")
        subprocess.Popen(  # noqa: S603 - our own module
            [sys.executable, "-m", "services.cli.supervisor", plan.to_json().decode()],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = status(home)
        if report["running"] and all(s["healthy"] for s in report["services"].values()):
            return report
        time.sleep(0.5)
    raise StackError(f"services not healthy within {timeout:.0f}s; see {home / 'logs'}\n"
                     f"{orjson.dumps(status(home), option=orjson.OPT_INDENT_2).decode()}")


def down(home: Path, timeout: float = 30.0) -> bool:
    """Stop the supervisor and its services; True if something was running."""
    state = read_state(home)
    if state is None:
        return False
    pid = int(state["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.2)
    if alive(pid):
        for service in state["services"].values():
            _kill(int(service["pid"]))
        _kill(pid)
    state_file(home).unlink(missing_ok=True)
    return True


def status(home: Path) -> dict[str, Any]:
    """Each service's pid, restarts and health (from its ``/health`` endpoint)."""
    state = read_state(home)
    if state is None:
        return {"running": False, "services": {}}
    services = {}
    for name, service in state["services"].items():
        port = int(service["port"])
        health = probe_health(port, service.get("health_path", "/health"))
        services[name] = {
            "pid": service["pid"], "alive": alive(int(service["pid"])),
            "restarts": service["restarts"], "port": service["port"],
            "healthy": health is not None and bool(health.get("ok")),
            "health": health,
            "url": f"http://127.0.0.1:{port}{service.get('page', '/metrics')}",
        }
    return {"running": True, "supervisor_pid": state["pid"], "services": services}


def probe_health(port: int, path: str = "/health") -> dict[str, Any] | None:
    """GET ``path`` on 127.0.0.1:``port``; None when nothing answers.

    ``/health`` answers with our JSON document; any other path (Prometheus' ``/-/ready``) is
    healthy when it answers 200, reported as ``{"ok": true, "status": 200}``.
    """
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1.0) as reply:
            if path != "/health":
                return {"ok": True, "status": reply.status}
            document: dict[str, Any] = orjson.loads(reply.read())
            return document
    except urllib.error.HTTPError as error:
        return {"ok": False, "status": error.code}
    except (OSError, orjson.JSONDecodeError):
        return None


def port_is_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:``port`` (so a service of ours can bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
