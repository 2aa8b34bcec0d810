"""``streamml kafka start|stop|status``: the local broker, secured or not, or a local cluster.

``--security sasl-scram`` (SASL_PLAINTEXT) or ``sasl-ssl`` (SASL_SSL) creates the SCRAM-SHA-512
user named by ``STREAMML_KAFKA__SASL_USERNAME`` / ``__SASL_PASSWORD`` when the storage is first
formatted; ``--cluster N`` runs N nodes on 127.0.0.11, .12, ... instead of one broker.
Nothing printed here contains a password.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import cast

import orjson

from services.cli.local_kafka.broker import BrokerError, LocalBroker
from services.cli.local_kafka.cluster import MAX_NODES, MIN_NODES, LocalCluster
from services.cli.local_kafka.security import (
    MECHANISM,
    SECURITY_MODES,
    BrokerSecurity,
    SecurityMode,
    recorded_mode,
)


def add_kafka_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``kafka`` subcommand's arguments."""
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--port", type=int, default=9092,
                        help="client port (the controller's is the next one); default 9092")
    parser.add_argument(
        "--security", choices=SECURITY_MODES, default=None,
        help="sasl-scram: SASL_PLAINTEXT with SCRAM-SHA-512; sasl-ssl: the same over TLS with "
             "a self-signed CA. The user is STREAMML_KAFKA__SASL_USERNAME/__SASL_PASSWORD, "
             "created when the broker's storage is first formatted (default: the mode the "
             "storage was formatted for; plaintext for a new one)",
    )
    parser.add_argument(
        "--cluster", type=int, metavar="N", default=None,
        help=f"run N ({MIN_NODES}-{MAX_NODES}) nodes on 127.0.0.11, .12, ... (replication 3, "
             "min.insync.replicas 2) instead of one broker; state in <home>/kafka-cluster",
    )


def run_kafka_command(args: argparse.Namespace, broker: LocalBroker) -> int:
    """Run ``args.action`` on ``broker`` (its port, home and cache) or on a cluster beside it."""
    if args.cluster is not None:
        if args.security not in (None, "plaintext"):
            raise BrokerError("--security is for the single broker; a --cluster is plaintext")
        return _cluster_action(args.action, LocalCluster(
            broker.paths.home.parent / "kafka-cluster", broker.cache_dir, size=args.cluster,
            port=broker.port, controller_port=broker.controller_port,
        ))
    if args.action == "start":
        return _start(broker, args.security)
    if args.action == "stop":
        print("stopped" if broker.stop() else "not running")
    else:
        _print(broker.status())
    return 0


def _start(broker: LocalBroker, mode: SecurityMode | None) -> int:
    from services.common.settings import Settings

    if mode is None:
        mode = cast(SecurityMode, recorded_mode(broker.paths.security_record))
    security = BrokerSecurity.from_settings(mode, Settings().kafka, broker.formatted)
    broker = dataclasses.replace(broker, security=security)
    pid = broker.start()
    how = f", {security.protocol} with {MECHANISM}" if security.uses_sasl else ""
    print(f"Kafka {broker.version} running on {broker.bootstrap_servers} (pid {pid}{how}); "
          f"log: {broker.paths.logs / 'broker.log'}")
    if security.uses_sasl:
        variables = [
            f"STREAMML_KAFKA__BOOTSTRAP_SERVERS={broker.bootstrap_servers}",
            f"STREAMML_KAFKA__SECURITY_PROTOCOL={security.protocol}",
            f"STREAMML_KAFKA__SASL_MECHANISM={MECHANISM}",
        ]
        if security.uses_tls:
            ca = broker.paths.tls.ca_certificate.resolve()
            variables.append(f"STREAMML_KAFKA__SSL_CA_LOCATION={ca}")
        print("clients need: " + " ".join(variables)
              + " and STREAMML_KAFKA__SASL_USERNAME/__SASL_PASSWORD")
    return 0


def _cluster_action(action: str, cluster: LocalCluster) -> int:
    if action == "start":
        pids = cluster.start()
        listing = ", ".join(f"{node_id}: pid {pid}" for node_id, pid in pids.items())
        print(f"Kafka {cluster.version} cluster of {cluster.size} nodes ({listing}); "
              f"STREAMML_KAFKA__BOOTSTRAP_SERVERS={cluster.bootstrap_servers}; "
              f"logs: {cluster.home}/node-*/logs/broker.log")
    elif action == "stop":
        stopped = cluster.stop()
        print(f"stopped {stopped} node(s)" if stopped else "not running")
    else:
        _print(cluster.status())
    return 0


def _print(document: object) -> None:
    print(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
