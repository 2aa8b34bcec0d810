"""Settings: one frozen, validated object per process, read from ``STREAMML_*`` and flags.

Nested values use ``__``: ``STREAMML_KAFKA__BOOTSTRAP_SERVERS=broker:9092``,
``STREAMML_KAFKA__SASL_PASSWORD=...``. Secrets are :class:`SecretStr` and never printed.
The same :class:`KafkaSettings` feed confluent-kafka (:meth:`KafkaSettings.client_config`) and
faust (see ``services.features.app``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.topics import TopicName

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSettings(BaseModel):
    """How to reach the cluster, including security. ``extra`` passes other librdkafka settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "streamml"
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: Path | None = None
    ssl_certificate_location: Path | None = None
    ssl_key_location: Path | None = None
    ssl_key_password: SecretStr | None = None
    extra: dict[str, str] = Field(default_factory=dict)

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers_look_like_host_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {value!r}")
        return value

    def client_config(self) -> dict[str, str]:
        """librdkafka settings shared by producers, consumers and admin clients."""
        config: dict[str, str] = {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": self.client_id,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism is not None:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username is not None:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        optional_paths = {
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
        }
        config.update({key: str(path) for key, path in optional_paths.items() if path is not None})
        if self.ssl_key_password is not None:
            config["ssl.key.password"] = self.ssl_key_password.get_secret_value()
        config.update(self.extra)
        return config


class TopicSettings(BaseModel):
    """How the project creates topics; None means "what the cluster can carry".

    By default a topic gets ``min(3, brokers)`` replicas and ``min.insync.replicas`` one less
    (at least 1), see :func:`services.common.topic_layout.replication_for`. ``partitions``
    replaces the count of the keyed pipeline topics (``events``, ``labels``, ``features``,
    ``predictions``, ``outcomes``; 4 by default); single-partition topics stay single, since
    their readers rely on one order. Read from ``STREAMML_TOPICS__REPLICATION_FACTOR``,
    ``STREAMML_TOPICS__MIN_INSYNC_REPLICAS`` and ``STREAMML_TOPICS__PARTITIONS``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    replication_factor: int | None = Field(default=None, ge=1, le=32)
    min_insync_replicas: int | None = Field(default=None, ge=1, le=32)
    partitions: int | None = Field(default=None, ge=1, le=10_000)


class BatchSettings(BaseModel):
    """How many messages a confluent-kafka service takes per turn of its loop, and how its
    clients trade latency for fewer, larger Kafka requests.

    ``max_messages`` per ``consume`` call; the consumer's ``fetch.min.bytes`` and
    ``fetch.wait.max.ms`` (the broker answers a fetch once it has that many bytes, or after that
    long); the producer's ``linger.ms``. The services on the prediction path (model) answer a
    fetch as soon as anything is there; those off it (drift, metrics sink) wait for 64 KiB or
    100 ms. Read from ``STREAMML_BATCH__MAX_MESSAGES``, ``STREAMML_BATCH__FETCH_MIN_BYTES``,
    ``STREAMML_BATCH__FETCH_MAX_WAIT_MS`` and ``STREAMML_BATCH__LINGER_MS``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_messages: int = Field(default=500, ge=1, le=100_000)
    fetch_min_bytes: int = Field(default=1, ge=1, le=100_000_000)
    fetch_max_wait_ms: int = Field(default=500, ge=0, le=300_000)
    linger_ms: float = Field(default=2.0, ge=0, le=900_000)

    def consumer_config(self) -> dict[str, int]:
        """The librdkafka consumer settings these stand for."""
        return {"fetch.min.bytes": self.fetch_min_bytes,
                "fetch.wait.max.ms": self.fetch_max_wait_ms}


class OffPathBatchSettings(BatchSettings):
    """:class:`BatchSettings` of a service whose output nobody waits for event by event."""

    fetch_min_bytes: int = Field(default=65_536, ge=1, le=100_000_000)
    fetch_max_wait_ms: int = Field(default=100, ge=0, le=300_000)


class Settings(BaseSettings):
    """Settings every service shares. Services subclass it to add their own fields."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMML_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    batch: BatchSettings = Field(default_factory=BatchSettings)
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$", max_length=100)
    spec: str = "clicks"
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=0, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    state_dir: Path = Path(".streamml/state")

    def topic(self, name: TopicName) -> str:
        """The full name of topic ``name`` in this deployment."""
        return f"{self.topic_prefix}{name}"

    def group(self, service: str) -> str:
        """The consumer group id of ``service`` in this deployment."""
        return f"{self.topic_prefix}streamml-{service}"
