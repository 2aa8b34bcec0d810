"""A local multi-node KRaft cluster: every node a broker and a controller, each on its own IP.

Node ``i`` (1-based) listens on ``127.0.0.<10 + i>:port`` (clients) and ``controller_port``
(its controller) and keeps its files in ``<home>/node-<i>`` (a :class:`BrokerPaths` layout);
Linux routes all of 127.0.0.0/8 to the loopback interface, so no setup is needed. The nodes form
one static quorum, share the cluster id in ``<home>/cluster.id``, and default to replication 3
with ``min.insync.replicas=2``, so one node may die without losing an acknowledged write.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from services.cli.local_kafka import process
from services.cli.local_kafka.broker import BrokerError, BrokerPaths, LocalBroker, new_cluster_id
from services.cli.local_kafka.config import Quorum, Voter
from services.cli.local_kafka.fetch import KAFKA_VERSION, fetch_kafka
from services.common.settings import KafkaSettings

MIN_NODES = 3
MAX_NODES = 9


@dataclass(frozen=True)
class LocalCluster:
    """``size`` local nodes of one cluster; ``start`` returns once every broker is registered."""

    home: Path
    cache_dir: Path
    size: int = 3
    port: int = 9092
    controller_port: int = 9093
    heap: str = "512m"
    first_host: int = 11
    version: str = KAFKA_VERSION

    def __post_init__(self) -> None:
        if not MIN_NODES <= self.size <= MAX_NODES:
            raise BrokerError(f"a local cluster has {MIN_NODES} to {MAX_NODES} nodes, "
                              f"not {self.size}")

    @property
    def hosts(self) -> list[str]:
        return [f"127.0.0.{self.first_host + index}" for index in range(self.size)]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{host}:{self.port}" for host in self.hosts)

    @property
    def nodes(self) -> list[LocalBroker]:
        """The nodes, node id ``i`` at index ``i - 1``."""
        voters = tuple(Voter(index + 1, host, self.controller_port)
                       for index, host in enumerate(self.hosts))
        cluster_id = self._cluster_id_file.read_text().strip() if (
            self._cluster_id_file.exists()) else ""
        replication = min(3, self.size)
        return [
            LocalBroker(
                BrokerPaths(self.home / f"node-{voter.node_id}"), self.cache_dir,
                host=voter.host, port=self.port, controller_port=self.controller_port,
                heap=self.heap, version=self.version,
                quorum=Quorum(voter.node_id, voters, cluster_id, replication, replication - 1),
            )
            for voter in voters
        ]

    def node(self, node_id: int) -> LocalBroker:
        """The node whose ``node.id`` (and Kafka broker id) is ``node_id``."""
        return self.nodes[node_id - 1]

    def client_settings(self) -> KafkaSettings:
        """Settings for a client of the whole cluster."""
        return KafkaSettings(bootstrap_servers=self.bootstrap_servers)

    def status(self) -> dict[str, object]:
        """Whether every node runs, and each node's own status."""
        nodes = [node.status() for node in self.nodes]
        return {
            "running": all(node["running"] for node in nodes),
            "bootstrap_servers": self.bootstrap_servers,
            "home": str(self.home),
            "nodes": nodes,
        }

    def start(self, timeout: float = 120.0) -> dict[int, int]:
        """Start the nodes that are not running; wait until all serve; node id -> pid."""
        libs = fetch_kafka(self.cache_dir, self.version)
        self.home.mkdir(parents=True, exist_ok=True)
        if not self._cluster_id_file.exists():
            self._cluster_id_file.write_text(new_cluster_id() + "\n")
        nodes = self.nodes
        pids = {index + 1: node.pid or node.launch(libs) for index, node in enumerate(nodes)}
        deadline = time.monotonic() + timeout
        for node_id, pid in pids.items():
            nodes[node_id - 1].wait_ready(pid, max(1.0, deadline - time.monotonic()))
        self._wait_registered(deadline)
        return pids

    def stop(self, timeout: float = 30.0) -> int:
        """Stop every running node at once (SIGTERM, SIGKILL after ``timeout``); how many ran."""
        running = [(node, node.pid) for node in self.nodes]
        pids = [pid for _, pid in running if pid is not None]
        process.terminate(pids, timeout)
        for node, pid in running:
            if pid is not None:
                node.paths.pid_file.unlink(missing_ok=True)
        return len(pids)

    @property
    def _cluster_id_file(self) -> Path:
        return self.home / "cluster.id"

    def _wait_registered(self, deadline: float) -> None:
        from services.common.kafka import make_admin

        admin = make_admin(self.client_settings())
        seen = 0
        while time.monotonic() < deadline:
            seen = len(admin.describe_cluster(request_timeout=5).result().nodes)
            if seen == self.size:
                return
            time.sleep(0.3)
        raise BrokerError(f"only {seen} of {self.size} brokers registered before the deadline")
