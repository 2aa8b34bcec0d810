"""Kafka client factories and topic creation (confluent-kafka).

Producers are idempotent with ``acks=all``. Consumers never auto-commit and never auto-store:
a loop stores an offset only after the message's work is done and commits only after the
producer has flushed what that work produced (see :mod:`services.common.consumer_loop`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from schemas.topics import TOPICS, TopicSpec
from services.common.settings import KafkaSettings, TopicSettings
from services.common.topic_admin import TopicReport, broker_count, provision
from services.common.topic_layout import catalogue_topics, replication_for

log = logging.getLogger(__name__)


RECOVERY_DEFAULTS = {"metadata.recovery.strategy": "none"}
"""librdkafka settings of every client, before the deployment's own (``KafkaSettings.extra``
overrides them).

When every broker it knows is down (a single broker restarting), librdkafka >= 2.10
"re-bootstraps": it drops those brokers, yet keeps a dropped one as the group coordinator it
waits for. After the restart, ``send_offsets_to_transaction`` then blocks forever, past its
timeout, and a consumer loses its group for a session timeout (librdkafka issues #5511, #5456).
Without re-bootstrapping, clients reconnect to the brokers they know, as before 2.10.
A node of a cluster that dies for good still leaves the metadata, and the same call can then
block for good; the model service gives it a deadline of its own
(:mod:`services.common.blocking_call`) and restarts from its last checkpoint.

One gap remains: a metadata answer listing no broker makes librdkafka forget every broker, and
without re-bootstrapping it never connects again (issue #5301). A lone KRaft broker gives that
answer for a few milliseconds of its controlled shutdown, so the project's single local broker
runs with ``controlled.shutdown.enable=false``; do the same on a single broker of your own.
"""


class BrokerUnavailable(RuntimeError):
    """The cluster did not answer in time, or refused our credentials."""


class CredentialsRejected(BrokerUnavailable):
    """The cluster refused our SASL login (user, password or mechanism); retrying cannot help.

    The message names the servers, the user and the mechanism, never the password.
    """


def make_producer(kafka: KafkaSettings, **overrides: Any) -> Producer:
    """An idempotent producer (``acks=all``) that retries without reordering or duplicating."""
    config: dict[str, Any] = {
        **RECOVERY_DEFAULTS,
        **kafka.client_config(),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "compression.type": "lz4",
    }
    config.update(overrides)
    return Producer(config)


def make_consumer(
    kafka: KafkaSettings, group_id: str, **overrides: Any
) -> Consumer:
    """A consumer in ``group_id`` whose offsets move only when the caller stores and commits."""
    config: dict[str, Any] = {
        **RECOVERY_DEFAULTS,
        **kafka.client_config(),
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "partition.assignment.strategy": "cooperative-sticky",
    }
    config.update(overrides)
    return Consumer(config)


def make_admin(kafka: KafkaSettings) -> AdminClient:
    """An admin client for the cluster."""
    config: dict[str, Any] = {**RECOVERY_DEFAULTS, **kafka.client_config()}
    return AdminClient(config)


def wait_for_broker(kafka: KafkaSettings, timeout: float = 30.0) -> str:
    """Block until the cluster describes itself; return its cluster id.

    Raises :class:`CredentialsRejected` as soon as the cluster refuses our SASL login, and
    :class:`BrokerUnavailable` with the client's last error when the deadline passes.
    """
    outcome = _describe_cluster(kafka, timeout)
    if isinstance(outcome, BrokerUnavailable):
        raise outcome  # raised here, so the traceback does not keep the admin client alive
    return outcome


def _describe_cluster(kafka: KafkaSettings, timeout: float) -> str | BrokerUnavailable:
    """The cluster id, or the error to raise; the admin client dies with this frame."""
    errors: list[KafkaError] = []
    config: dict[str, Any] = {**kafka.client_config(), "error_cb": errors.append}
    admin = AdminClient(config)
    deadline = time.monotonic() + timeout
    last_error: object = None
    while time.monotonic() < deadline:
        future = admin.describe_cluster(request_timeout=min(5.0, timeout))
        while not future.done() and time.monotonic() < deadline:
            admin.poll(0.1)  # serves error_cb, where librdkafka reports a refused login
            if (rejected := _rejection(kafka, errors)) is not None:
                return rejected
        if not future.done():
            break
        try:
            return str(future.result().cluster_id)
        except KafkaException as error:
            kafka_error = error.args[0] if error.args else None
            if isinstance(kafka_error, KafkaError) and (
                rejected := _rejection(kafka, [kafka_error])
            ) is not None:
                return rejected
            last_error = error
        time.sleep(0.5)
    if errors:
        last_error = errors[-1].str()
    return BrokerUnavailable(
        f"Kafka at {kafka.bootstrap_servers} did not answer within {timeout:.0f}s: {last_error}"
    )


def _rejection(kafka: KafkaSettings, errors: list[KafkaError]) -> CredentialsRejected | None:
    """A :class:`CredentialsRejected` if one of ``errors`` is a refused SASL login, else None."""
    for error in errors:
        if error.code() not in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED):
            continue
        user = kafka.sasl_username
        mechanism = kafka.sasl_mechanism or "PLAIN"
        reason = error.str()
        if "invalid credentials" in reason or error.code() == KafkaError.SASL_AUTHENTICATION_FAILED:
            return CredentialsRejected(
                f"Kafka at {kafka.bootstrap_servers} rejected the credentials of user {user!r} "
                f"(SASL/{mechanism} authentication failed)"
            )
        return CredentialsRejected(
            f"Kafka at {kafka.bootstrap_servers} refused the SASL/{mechanism} login of user "
            f"{user!r}: {reason.split(': ', 1)[-1]}"
        )
    return None


def ensure_topics(
    kafka: KafkaSettings,
    prefix: str = "",
    specs: Iterable[TopicSpec] = TOPICS,
    topics: TopicSettings | None = None,
    timeout: float = 30.0,
) -> list[str]:
    """Create the catalogue's topics under ``prefix`` unless they exist; return those created.

    See :func:`provision_topics`, which also says what existing topics lack.
    """
    return provision_topics(kafka, prefix, specs, topics, timeout).created_names


def provision_topics(
    kafka: KafkaSettings,
    prefix: str = "",
    specs: Iterable[TopicSpec] = TOPICS,
    topics: TopicSettings | None = None,
    timeout: float = 30.0,
) -> TopicReport:
    """Create the catalogue's missing topics under ``prefix`` with the replication the cluster
    can carry (:func:`~services.common.topic_layout.replication_for`, ``topics`` overriding it)
    and report existing topics weaker than that; see :func:`create_missing_topics`.

    Raises :class:`~services.common.topic_layout.TopicLayoutError` when the settings ask for
    more replicas than the cluster has brokers.
    """
    wait_for_broker(kafka, timeout)
    admin = make_admin(kafka)
    replication = replication_for(broker_count(admin, timeout), topics)
    return provision(admin, catalogue_topics(prefix, replication, topics, specs), timeout)


def create_missing_topics(
    kafka: KafkaSettings, wanted: list[NewTopic], timeout: float = 30.0
) -> list[str]:
    """Create those of ``wanted`` that do not exist yet and wait until the broker lists them;
    return those created.

    Idempotent: an existing topic is never recreated. What it lacks against ``wanted`` (fewer
    partitions or replicas, other configs) is logged as a warning, and configs that only tune
    compaction and that it does not set itself are set on it
    (:func:`~services.common.topic_admin.provision`). Raises :class:`BrokerUnavailable` (or
    :class:`CredentialsRejected`) first if the cluster cannot be reached.
    """
    wait_for_broker(kafka, timeout)
    return provision(make_admin(kafka), wanted, timeout).created_names
