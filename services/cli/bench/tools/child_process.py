"""A service run as a child process (:class:`~services.cli.process.ServiceProcess`), watched from
outside by the benchmark scripts: its pid, whether it has ended, and why."""

from __future__ import annotations

import time

from services.cli.process import ServiceProcess


def service_pid(process: ServiceProcess) -> int | None:
    """The pid of the running service, or None once it has exited (or before it started)."""
    child = process._process  # read-only peek: ServiceProcess keeps its Popen private
    if child is None or child.poll() is not None:
        return None
    return child.pid


def exited(process: ServiceProcess, within: float = 10.0) -> bool:
    """Whether the service has exited, or does within ``within`` seconds (0: only now)."""
    deadline = time.monotonic() + within
    while service_pid(process) is not None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def failure(process: ServiceProcess) -> str:
    """The last error line of a service that exited on its own (its exit code otherwise)."""
    child = process._process
    code = None if child is None else child.poll()
    lines = process.log.read_text(errors="replace").splitlines() if process.log.exists() else []
    errors = [line for line in lines if "Error" in line or "Exception" in line]
    return f"exit code {code}: {errors[-1] if errors else '(no error in the log)'}"
