"""Run one service as a child process and wait for its readiness line (tests, benchmarks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

import orjson


class ServiceProcess:
    """``python -m services.<module>`` with ``env``; stdout and stderr go to ``log``."""

    def __init__(self, module: str, env: dict[str, str], log: Path) -> None:
        self.module = module
        self.env = {**os.environ, "STREAMML_METRICS_PORT": "0", **env}
        self.log = log
        self.metrics_port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()

    def start(self, timeout: float = 90.0) -> ServiceProcess:
        """Start the process and wait until it prints its ``{"ready": ...}`` line."""
        self._ready.clear()
        self._process = subprocess.Popen(  # noqa: S603 - our own module, fixed argv
            [sys.executable, "-m", self.module], env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        if self._process.stdout is None:
            raise RuntimeError("child process has no stdout pipe")
        threading.Thread(target=self._pump, args=(self._process.stdout,), daemon=True).start()
        if not self._ready.wait(timeout):
            self.kill()
            raise AssertionError(f"{self.module} not ready within {timeout:.0f}s; see {self.log}")
        return self

    def _pump(self, stream: IO[bytes]) -> None:
        with self.log.open("ab") as log:
            for line in stream:
                log.write(line)
                log.flush()
                start = line.find(b'{"ready"')  # terminal escapes may precede it
                if start >= 0:
                    self.metrics_port = int(orjson.loads(line[start:])["metrics_port"])
                    self._ready.set()

    def kill(self) -> None:
        """SIGKILL: no chance to flush or commit."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(30)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; return the exit code (SIGKILL if it does not stop in time)."""
        if self._process is None:
            return 0
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                return self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self._process.returncode
