"""The project's broker launcher: start, reuse, recover from a stale pid, stop."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from services.cli.local_kafka import BrokerError, BrokerPaths, LocalBroker
from services.common.kafka import wait_for_broker
from services.common.settings import KafkaSettings
from tests.integration.conftest import REPO, wait_for

pytestmark = pytest.mark.integration


def test_start_reuses_a_running_broker_recovers_from_a_stale_pid_and_stops(
    tmp_path: Path,
) -> None:
    port = _free_port_pair()
    broker = LocalBroker(BrokerPaths(tmp_path / "kafka"), REPO / ".cache", port=port,
                         controller_port=port + 1, heap="384m")
    try:
        first = broker.start()
        assert wait_for_broker(KafkaSettings(bootstrap_servers=broker.bootstrap_servers), 10)
        assert broker.start() == first, "a second start must reuse the running broker"

        os.kill(first, signal.SIGKILL)
        wait_for(lambda: not _listening(broker.port), 30, "the killed broker to go away")
        assert broker.paths.pid_file.exists(), "the stale pid file is what we test"

        second = broker.start()
        assert second != first
        assert wait_for_broker(KafkaSettings(bootstrap_servers=broker.bootstrap_servers), 10)
    finally:
        broker.stop()
    assert not broker.status()["running"]
    assert not broker.paths.pid_file.exists()


def test_start_refuses_a_port_taken_by_a_broker_it_did_not_start(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    host, _, port = kafka.bootstrap_servers.partition(":")
    stranger = LocalBroker(BrokerPaths(tmp_path / "other"), REPO / ".cache", host=host,
                           port=int(port), controller_port=int(port) + 7)
    with pytest.raises(BrokerError, match="already taken"):
        stranger.start(timeout=5)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _free_port_pair() -> int:
    """A port that is free with the one after it (client and controller): a fixed port may be
    taken on the machine that runs the tests."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port < 65535 and not _listening(port) and not _listening(port + 1):
            return port
    raise RuntimeError("no two consecutive free ports found")
