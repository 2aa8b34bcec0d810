"""Processes of the local brokers: the java command line, launching, pid files, stopping.

Shared by :class:`~services.cli.local_kafka.broker.LocalBroker` and
:class:`~services.cli.local_kafka.cluster.LocalCluster`. Nothing here knows Kafka's settings.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")


class BrokerError(RuntimeError):
    """The local broker could not be started or stopped; the message says why and what to do."""


def java_command(
    libs: Path, logs: Path, main_class: str, *args: str, heap: str = "256m",
    short_lived: bool = False,
) -> list[str]:
    """The argv running ``main_class`` from the Kafka classpath ``libs``, logging into ``logs``.

    ``short_lived`` tunes the JVM for a tool that runs for seconds (quick JIT, serial GC).
    """
    tuning = (["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"] if short_lived
              else ["-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"])
    return [
        "java", f"-Xms{heap}", f"-Xmx{heap}", *tuning,
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        f"-Dkafka.logs.dir={logs.resolve()}",
        "-cp", f"{libs.resolve()}/*", main_class, *args,
    ]


def run_tool(command: list[str]) -> str:
    """Run a short-lived command; its stdout, or :class:`BrokerError` with its output.

    The error names the command's program and first arguments only: arguments may carry
    credentials (salted, but still not for a terminal).
    """
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        shown = " ".join(part for part in command if not part.startswith("-")
                         and "=" not in part)[-200:]
        raise BrokerError(f"{shown} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def launch(command: list[str], output: Path, pid_file: Path) -> int:
    """Start ``command`` in its own session, appending its output to ``output``; record its pid."""
    with output.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - argv built by java_command
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    pid_file.write_text(str(process.pid))
    return process.pid


def read_pid(pid_file: Path) -> int | None:
    """The pid recorded in ``pid_file`` if that process is a running Kafka server, else None."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if alive(pid) and is_kafka(pid) else None


def terminate(pids: Iterable[int], timeout: float) -> None:
    """SIGTERM every pid at once, wait up to ``timeout`` for them all, then SIGKILL the rest."""
    pending = [pid for pid in pids if alive(pid)]
    for pid in pending:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(pid) for pid in pending):
        time.sleep(0.2)
    for pid in pending:
        if alive(pid):
            _signal(pid, signal.SIGKILL)
            wait_gone(pid, 10.0)


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, IndexError):
        return True
    return state != "Z"


def is_kafka(pid: int) -> bool:
    """True if ``pid`` runs ``kafka.Kafka`` (or when /proc cannot tell)."""
    try:
        return b"kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return True


def wait_gone(pid: int, timeout: float) -> None:
    """Poll until ``pid`` has exited or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.1)


def port_open(host: str, port: int) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0
