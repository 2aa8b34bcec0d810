"""Local Apache Kafka (KRaft), fetched from Maven Central.

``fetch`` resolves the broker's jars with Maven into a cache folder; ``LocalBroker.start`` formats
storage on first use and runs a combined broker + controller on 127.0.0.1, optionally with
SASL/SCRAM and TLS (``security``); ``LocalCluster`` runs several such nodes as one cluster on
127.0.0.11, .12, ...; ``stop`` ends them.
"""

from services.cli.local_kafka.broker import BrokerError, BrokerPaths, LocalBroker
from services.cli.local_kafka.cluster import LocalCluster
from services.cli.local_kafka.fetch import KAFKA_VERSION, fetch_kafka
from services.cli.local_kafka.security import BrokerSecurity, Credentials

__all__ = [
    "KAFKA_VERSION",
    "BrokerError",
    "BrokerPaths",
    "BrokerSecurity",
    "Credentials",
    "LocalBroker",
    "LocalCluster",
    "fetch_kafka",
]
