"""``server.properties`` of a local KRaft node (combined broker + controller).

A single node bootstraps its own dynamic quorum (``--standalone``); the nodes of a cluster list
the same static ``controller.quorum.voters``. The client listener carries the broker's security
(see :mod:`~services.cli.local_kafka.security`); the controller listener is PLAINTEXT.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Voter:
    """One controller of a static quorum."""

    node_id: int
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.node_id}@{self.host}:{self.port}"


@dataclass(frozen=True)
class Quorum:
    """A node's place in a multi-node cluster: its id, every voter, the replication to use."""

    node_id: int
    voters: tuple[Voter, ...]
    cluster_id: str
    replication: int = 3
    min_insync: int = 2


def server_properties(
    host: str,
    port: int,
    controller_port: int,
    data: Path,
    protocol: str = "PLAINTEXT",
    quorum: Quorum | None = None,
    security: dict[str, str] | None = None,
) -> str:
    """The text of ``server.properties`` for one node; ``security`` entries are appended.

    The client listener is named after its ``protocol`` and is also the inter-broker listener.
    """
    replication = quorum.replication if quorum is not None else 1
    min_insync = quorum.min_insync if quorum is not None else 1
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(quorum.node_id if quorum is not None else 1),
        "listeners": f"{protocol}://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"{protocol}://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": f"{protocol}:{protocol},CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": protocol,
        "log.dirs": str(data.resolve()),
        "num.partitions": "1",
        "default.replication.factor": str(replication),
        "min.insync.replicas": str(min_insync),
        "offsets.topic.replication.factor": str(replication),
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": str(replication),
        "transaction.state.log.min.isr": str(min_insync),
        "share.coordinator.state.topic.replication.factor": str(replication),
        "share.coordinator.state.topic.min.isr": str(min_insync),
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "log.retention.hours": "24",
        "log.segment.bytes": str(64 * 1024 * 1024),
    }
    if quorum is None:
        settings["controller.quorum.bootstrap.servers"] = f"{host}:{controller_port}"
        # A lone node has no other broker to hand its partitions to, and its controlled
        # shutdown fences it while it still answers requests: for some milliseconds its
        # metadata lists no broker at all. librdkafka >= 2.10 then forgets every broker it
        # knew and, without re-bootstrapping (which the services turn off, see
        # services.common.kafka), never connects again (librdkafka issue #5301). A stop then
        # closes the logs cleanly but skips that step.
        settings["controlled.shutdown.enable"] = "false"
    else:
        settings.update({
            "controller.quorum.voters": ",".join(str(voter) for voter in quorum.voters),
            # A killed node is fenced, and its partitions get new leaders, after this long
            # without heartbeats (the default is 9 s).
            "broker.session.timeout.ms": "4000",
            "broker.heartbeat.interval.ms": "1000",
            "unclean.leader.election.enable": "false",
        })
    settings.update(security or {})
    return "".join(f"{key}={value}\n" for key, value in settings.items())
