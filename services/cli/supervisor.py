"""Runs the services as supervised processes: start, restart on crash, stop on SIGTERM.

``streamml up`` starts this module detached (``python -m services.cli.supervisor PLAN``); it
spawns one process per service (``python -m <module>``, or the plan's own ``argv`` for programs
such as Prometheus) with its logs in ``<home>/logs/<service>.log``, restarts a service
that exits unexpectedly (with back-off), records pids in ``<home>/run/supervisor.json``, and on
SIGTERM stops every service with SIGTERM (SIGKILL after a grace period).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

import orjson

from services.common.runtime import StopSignal

SERVICE_MODULES = {
    "features": "services.features",
    "model": "services.model",
    "drift": "services.drift",
    "metrics-sink": "services.metrics_sink",
    "producer": "services.producer",
    "predictor": "services.predictor",
}
METRICS_PORTS = {"producer": 9101, "features": 9102, "model": 9103, "drift": 9104,
                 "metrics-sink": 9105}
PREDICTOR_PORT = 9110
"""Predictor replica ``i`` (``streamml up --predictors N``) listens on ``9110 + i``."""
GRACE_SECONDS = 15.0


@dataclass
class ServicePlan:
    """One service to run: its name, module, extra environment and metrics port.

    ``argv``, when given, is run instead of ``python -m <module>``; ``health_path`` is the URL
    path on ``port`` that answers 200 when the service is healthy, ``page`` the one to show.
    ``restart_after_success`` False means an exit with status 0 is the end of the service's work
    (a producer that reached its event count), not a crash: it is not restarted.
    """

    name: str
    module: str
    port: int
    env: dict[str, str] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    health_path: str = "/health"
    page: str = "/metrics"
    restart_after_success: bool = True


@dataclass
class Plan:
    """All services of one deployment plus where their files go."""

    home: str
    services: list[ServicePlan]

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> Plan:
        document = orjson.loads(raw)
        return cls(document["home"], [ServicePlan(**s) for s in document["services"]])


def state_file(home: Path) -> Path:
    """Where the running supervisor records itself and its children."""
    return home / "run" / "supervisor.json"


class Supervisor:
    """Keeps the plan's services running until stopped."""

    def __init__(self, plan: Plan, stop: StopSignal) -> None:
        self._plan = plan
        self._stop = stop
        self._home = Path(plan.home)
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._restarts: dict[str, int] = {}
        self._logs: dict[str, IO[bytes]] = {}

    def run(self) -> int:
        (self._home / "logs").mkdir(parents=True, exist_ok=True)
        (self._home / "run").mkdir(parents=True, exist_ok=True)
        for service in self._plan.services:
            self._spawn(service)
        next_start: dict[str, float] = {}
        finished: set[str] = set()
        while not self._stop.wait(0.5):
            for service in self._plan.services:
                child = self._children[service.name]
                if child.poll() is None or service.name in finished:
                    continue
                if child.returncode == 0 and not service.restart_after_success:
                    self._log(f"{service.name} finished its work (exit 0); not restarting it")
                    finished.add(service.name)
                    continue
                due = next_start.setdefault(
                    service.name, time.monotonic() + min(30.0, 2.0 ** self._restarts[service.name])
                )
                if time.monotonic() >= due:
                    self._log(f"{service.name} exited with {child.returncode}; restarting")
                    self._restarts[service.name] += 1
                    next_start.pop(service.name)
                    self._spawn(service)
        self._stop_all()
        state_file(self._home).unlink(missing_ok=True)
        return 0

    def _spawn(self, service: ServicePlan) -> None:
        log = self._logs.get(service.name)
        if log is None:
            path = self._home / "logs" / f"{service.name}.log"
            log = self._logs[service.name] = path.open("ab")
        env = {**os.environ, **service.env, "STREAMML_METRICS_PORT": str(service.port)}
        argv = service.argv or [sys.executable, "-m", service.module]
        self._children[service.name] = subprocess.Popen(  # noqa: S603 - argv from our own plan
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )
        self._restarts.setdefault(service.name, 0)
        self._write_state()

    def _write_state(self) -> None:
        state = {
            "pid": os.getpid(),
            "services": {
                name: {"pid": child.pid, "port": plan.port, "restarts": self._restarts[name],
                       "health_path": plan.health_path, "page": plan.page}
                for plan in self._plan.services
                for name, child in self._children.items() if name == plan.name
            },
        }
        path = state_file(self._home)
        path.with_suffix(".tmp").write_bytes(orjson.dumps(state))
        path.with_suffix(".tmp").replace(path)

    def _stop_all(self) -> None:
        # Stop the producer first, then consumers downstream-last, so nothing in flight is lost.
        for child in self._children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for name, child in self._children.items():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._log(f"{name} did not stop within {GRACE_SECONDS:.0f}s; killing it")
                child.kill()
                child.wait()

    def _log(self, text: str) -> None:
        sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} supervisor: {text}\n")
        sys.stderr.flush()


def main() -> int:
    """Entry point: ``python -m services.cli.supervisor <plan json>``."""
    plan = Plan.from_json(sys.argv[1].encode())
    return Supervisor(plan, StopSignal().install()).run()


if __name__ == "__main__":
    sys.exit(main())
