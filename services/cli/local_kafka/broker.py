"""Start, stop and inspect one local KRaft broker (combined broker + controller).

Layout under ``home`` (``.streamml/kafka`` by default): ``server.properties``, ``data/`` (KRaft
storage), ``logs/broker.log``, ``broker.pid``. Starting twice reuses the running broker; a pid
file whose process is gone is stale and removed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from services.cli.local_kafka.fetch import KAFKA_VERSION, fetch_kafka

LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")


class BrokerError(RuntimeError):
    """The local broker could not be started or stopped; the message says why and what to do."""


@dataclass(frozen=True)
class BrokerPaths:
    """Where one local broker keeps its files."""

    home: Path

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def config(self) -> Path:
        return self.home / "server.properties"


@dataclass(frozen=True)
class LocalBroker:
    """A single-node broker on ``host:port`` with its controller on ``controller_port``."""

    paths: BrokerPaths
    cache_dir: Path
    host: str = "127.0.0.1"
    port: int = 9092
    controller_port: int = 9093
    heap: str = "768m"
    version: str = KAFKA_VERSION

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def status(self) -> dict[str, object]:
        """Pid (if running), whether the port answers, where the files are."""
        pid = self._running_pid()
        return {
            "running": pid is not None,
            "pid": pid,
            "listening": _port_open(self.host, self.port),
            "bootstrap_servers": self.bootstrap_servers,
            "home": str(self.paths.home),
            "log": str(self.paths.logs / "broker.log"),
        }

    def start(self, timeout: float = 90.0) -> int:
        """Start the broker unless ours already runs; wait until it serves clients; return pid."""
        pid = self._running_pid()
        if pid is not None:
            self._wait_ready(pid, timeout)
            return pid
        if _port_open(self.host, self.port):
            raise BrokerError(
                f"{self.bootstrap_servers} is already taken by a process this project did not "
                "start; stop it or choose another port (--port)"
            )
        libs = fetch_kafka(self.cache_dir, self.version)
        self.paths.data.mkdir(parents=True, exist_ok=True)
        self.paths.logs.mkdir(parents=True, exist_ok=True)
        self._write_config()
        if not (self.paths.data / "meta.properties").exists():
            self._format(libs)
        pid = self._launch(libs)
        self._wait_ready(pid, timeout)
        return pid

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop our broker (SIGTERM, then SIGKILL after ``timeout``); True if one was running."""
        pid = self._running_pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 10.0)
        self.paths.pid_file.unlink(missing_ok=True)
        return True

    def _running_pid(self) -> int | None:
        """Our broker's pid, cleaning a stale pid file (and the storage lock it left)."""
        try:
            pid = int(self.paths.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if _alive(pid) and _is_java(pid):
            return pid
        self.paths.pid_file.unlink(missing_ok=True)
        (self.paths.data / ".lock").unlink(missing_ok=True)
        return None

    def _write_config(self) -> None:
        listeners = (
            f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}"
        )
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"{self.host}:{self.controller_port}",
            "listeners": listeners,
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.paths.data.resolve()),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "log.retention.hours": "24",
            "log.segment.bytes": str(64 * 1024 * 1024),
        }
        text = "".join(f"{key}={value}\n" for key, value in settings.items())
        self.paths.config.write_text(text)

    def _java(self, libs: Path, main_class: str, *args: str, heap: str = "256m") -> list[str]:
        return [
            "java", f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={self.paths.logs.resolve()}",
            "-cp", f"{libs.resolve()}/*", main_class, *args,
        ]

    def _format(self, libs: Path) -> None:
        cluster_id = _run(self._java(libs, "kafka.tools.StorageTool", "random-uuid")).strip()
        cluster_id = cluster_id.splitlines()[-1]
        _run(self._java(
            libs, "kafka.tools.StorageTool", "format", "-t", cluster_id,
            "-c", str(self.paths.config), "--standalone",
        ))

    def _launch(self, libs: Path) -> int:
        out = (self.paths.logs / "broker.out").open("ab")
        process = subprocess.Popen(  # noqa: S603 - fixed argv built above
            self._java(libs, "kafka.Kafka", str(self.paths.config), heap=self.heap),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.paths.pid_file.write_text(str(process.pid))
        return process.pid

    def _wait_ready(self, pid: int, timeout: float) -> None:
        from services.common.kafka import BrokerUnavailable, wait_for_broker
        from services.common.settings import KafkaSettings

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                raise BrokerError(
                    f"the broker exited during start-up; see {self.paths.logs / 'broker.log'}"
                    f" and {self.paths.logs / 'broker.out'}:\n{self._log_tail()}"
                )
            if _port_open(self.host, self.port):
                try:
                    wait_for_broker(KafkaSettings(bootstrap_servers=self.bootstrap_servers), 5.0)
                    return
                except BrokerUnavailable:
                    pass
            time.sleep(0.3)
        raise BrokerError(f"the broker did not answer within {timeout:.0f}s:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 30) -> str:
        texts = []
        for name in ("broker.out", "broker.log"):
            path = self.paths.logs / name
            if path.exists():
                texts.append("\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(texts)


def _run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BrokerError(f"{' '.join(command[-6:])} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def _alive(pid: int) -> bool:
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


def _is_java(pid: int) -> bool:
    try:
        return b"kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return True


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0
