"""A local single-node Apache Kafka broker (KRaft), fetched from Maven Central.

``fetch`` resolves the broker's jars with Maven into a cache folder, ``LocalBroker.start`` formats
storage on first use and runs a combined broker + controller on 127.0.0.1, ``stop`` ends it.
"""

from services.cli.local_kafka.broker import BrokerError, BrokerPaths, LocalBroker
from services.cli.local_kafka.fetch import KAFKA_VERSION, fetch_kafka

__all__ = ["KAFKA_VERSION", "BrokerError", "BrokerPaths", "LocalBroker", "fetch_kafka"]
