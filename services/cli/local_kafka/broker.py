"""Start, stop and inspect one local KRaft node (combined broker + controller).

Layout under ``home`` (``.streamml/kafka`` by default): ``server.properties``, ``data/`` (KRaft
storage), ``logs/broker.log``, ``broker.pid``, and with ``--security``: ``security.json`` (the
mode the storage was formatted for), ``secrets/`` (the broker's own SCRAM password) and ``tls/``
(the CA clients trust). Starting twice reuses the running broker; a pid file whose process is
gone is stale and removed.
"""

from __future__ import annotations

import secrets
import time
from base64 import urlsafe_b64encode
from dataclasses import dataclass, field
from pathlib import Path

from services.cli.local_kafka import process
from services.cli.local_kafka.config import Quorum, server_properties
from services.cli.local_kafka.fetch import KAFKA_VERSION, fetch_kafka
from services.cli.local_kafka.process import BrokerError
from services.cli.local_kafka.security import (
    BrokerSecurity,
    Credentials,
    broker_credentials,
    check_recorded,
    listener_properties,
    record_security,
    recorded_mode,
    scram_credential,
)
from services.cli.local_kafka.tls import TlsFiles, ensure_tls
from services.common.settings import KafkaSettings

__all__ = ["BrokerError", "BrokerPaths", "LocalBroker", "new_cluster_id"]


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

    @property
    def security_record(self) -> Path:
        return self.home / "security.json"

    @property
    def secrets(self) -> Path:
        return self.home / "secrets"

    @property
    def tls(self) -> TlsFiles:
        return TlsFiles(self.home / "tls")


@dataclass(frozen=True)
class LocalBroker:
    """A node on ``host:port`` with its controller on ``controller_port``.

    Alone (``quorum`` None) it is a single-node cluster; with a :class:`Quorum` it is one node
    of a :class:`~services.cli.local_kafka.cluster.LocalCluster`.
    """

    paths: BrokerPaths
    cache_dir: Path
    host: str = "127.0.0.1"
    port: int = 9092
    controller_port: int = 9093
    heap: str = "768m"
    version: str = KAFKA_VERSION
    security: BrokerSecurity = field(default_factory=BrokerSecurity)
    quorum: Quorum | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def formatted(self) -> bool:
        """True once the storage has been formatted (it then keeps its mode and users)."""
        return (self.paths.data / "meta.properties").exists()

    @property
    def pid(self) -> int | None:
        """The pid of our running broker, or None."""
        return self._running_pid()

    def client_settings(self, credentials: Credentials | None = None) -> KafkaSettings:
        """Settings for a client of this broker as ``credentials`` (default: the client user)."""
        user = credentials if credentials is not None else self.security.client
        tls = self.paths.tls if self.security.uses_tls else None
        return self.security.client_settings(self.bootstrap_servers, user, tls)

    def status(self) -> dict[str, object]:
        """Pid (if running), whether the port answers, the security mode, where the files are."""
        pid = self._running_pid()
        report: dict[str, object] = {
            "running": pid is not None,
            "pid": pid,
            "listening": process.port_open(self.host, self.port),
            "bootstrap_servers": self.bootstrap_servers,
            "security": recorded_mode(self.paths.security_record),
            "home": str(self.paths.home),
            "log": str(self.paths.logs / "broker.log"),
        }
        if self.paths.tls.ca_certificate.exists():
            report["ca_certificate"] = str(self.paths.tls.ca_certificate)
        return report

    def start(self, timeout: float = 90.0) -> int:
        """Start the broker unless ours already runs; wait until it serves clients; return pid.

        :class:`BrokerError` if the storage was formatted for another security mode or user.
        """
        if self.formatted:
            check_recorded(self.paths.security_record, self.security)
        pid = self._running_pid()
        if pid is None:
            pid = self.launch(fetch_kafka(self.cache_dir, self.version))
        self.wait_ready(pid, timeout)
        return pid

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop our broker (SIGTERM, then SIGKILL after ``timeout``); True if one was running."""
        pid = self._running_pid()
        if pid is None:
            return False
        process.terminate([pid], timeout)
        self.paths.pid_file.unlink(missing_ok=True)
        return True

    def launch(self, libs: Path) -> int:
        """Format the storage on first use, write the config and start the process; its pid.

        Does not wait: a cluster's nodes serve clients only once a quorum of them runs.
        """
        if process.port_open(self.host, self.port):
            raise BrokerError(
                f"{self.bootstrap_servers} is already taken by a process this project did not "
                "start; stop it or choose another port (--port)"
            )
        formatted = self.formatted
        if formatted:
            check_recorded(self.paths.security_record, self.security)
        self.paths.data.mkdir(parents=True, exist_ok=True)
        self.paths.logs.mkdir(parents=True, exist_ok=True)
        broker_user = self._write_config()
        if not formatted:
            self._format(libs, broker_user)
            record_security(self.paths.security_record, self.security)
        command = process.java_command(
            libs, self.paths.logs, "kafka.Kafka", str(self.paths.config), heap=self.heap
        )
        return process.launch(command, self.paths.logs / "broker.out", self.paths.pid_file)

    def wait_ready(self, pid: int, timeout: float) -> None:
        """Return once the broker answers clients; :class:`BrokerError` if it dies or is late."""
        from services.common.kafka import BrokerUnavailable, wait_for_broker

        admin = self.client_settings(self._broker_user())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not process.alive(pid):
                raise BrokerError(
                    f"the broker exited during start-up; see {self.paths.logs / 'broker.log'}"
                    f" and {self.paths.logs / 'broker.out'}:\n{self._log_tail()}"
                )
            if process.port_open(self.host, self.port):
                try:
                    wait_for_broker(admin, 5.0)
                    return
                except BrokerUnavailable:
                    pass
            time.sleep(0.3)
        raise BrokerError(f"the broker did not answer within {timeout:.0f}s:\n{self._log_tail()}")

    def _running_pid(self) -> int | None:
        """Our broker's pid, cleaning a stale pid file (and the storage lock it left)."""
        pid = process.read_pid(self.paths.pid_file)
        if pid is None and self.paths.pid_file.exists():
            self.paths.pid_file.unlink(missing_ok=True)
            (self.paths.data / ".lock").unlink(missing_ok=True)
        return pid

    def _broker_user(self) -> Credentials | None:
        return broker_credentials(self.paths.secrets) if self.security.uses_sasl else None

    def _write_config(self) -> Credentials | None:
        """Write ``server.properties`` (mode 0600: it holds the broker's own password)."""
        broker_user = self._broker_user()
        tls = None
        if self.security.uses_tls:
            hosts = [self.host] if self.quorum is None else [v.host for v in self.quorum.voters]
            tls = ensure_tls(self.paths.tls.folder, hosts)
        text = server_properties(
            self.host, self.port, self.controller_port, self.paths.data,
            protocol=self.security.protocol, quorum=self.quorum,
            security=listener_properties(self.security, broker_user, tls),
        )
        self.paths.config.touch(mode=0o600)
        self.paths.config.chmod(0o600)
        self.paths.config.write_text(text)
        return broker_user

    def _format(self, libs: Path, broker_user: Credentials | None) -> None:
        users = [user for user in (broker_user, self.security.client) if user is not None]
        scram = [arg for user in users for arg in ("--add-scram", scram_credential(user))]
        if self.quorum is None:
            cluster_id, quorum_flag = new_cluster_id(), ["--standalone"]
        else:
            cluster_id, quorum_flag = self.quorum.cluster_id, []
        process.run_tool(process.java_command(
            libs, self.paths.logs, "kafka.tools.StorageTool", "format", "-t", cluster_id,
            "-c", str(self.paths.config), *quorum_flag, *scram, short_lived=True,
        ))

    def _log_tail(self, lines: int = 30) -> str:
        texts = []
        for name in ("broker.out", "broker.log"):
            path = self.paths.logs / name
            if path.exists():
                texts.append("\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(texts)


def new_cluster_id() -> str:
    """A random KRaft cluster id, as ``kafka-storage random-uuid`` makes them."""
    while True:
        text = urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        if not text.startswith("-"):
            return text
