"""The local broker with SASL/SCRAM-SHA-512, plain and over TLS, against real brokers.

Right credentials publish and read through the project's own clients; a service started with a
wrong password exits with code 2 and one clear line instead of retrying; the password shows up
in no service output, no ``/metrics`` or ``/health`` page and no file under the broker's home.
The brokers run on their own ports and homes (127.0.0.1:19192 and :19194), never the shared one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Message, TopicPartition
from confluent_kafka.cimpl import NewTopic
from pydantic import SecretStr

from services.cli.local_kafka import (
    BrokerPaths,
    BrokerSecurity,
    Credentials,
    LocalBroker,
    fetch_kafka,
)
from services.cli.process import ServiceProcess
from services.common.kafka import (
    BrokerUnavailable,
    CredentialsRejected,
    create_missing_topics,
    ensure_topics,
    make_consumer,
    make_producer,
    wait_for_broker,
)
from services.common.settings import KafkaSettings
from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration

USER = "alice"
PASSWORD = "Pa55-only-alice-knows-" + uuid.uuid4().hex[:8]
WRONG = "Wr0ng-guess-" + uuid.uuid4().hex[:8]
MESSAGES = 500
EXIT_BOUND_SECONDS = 60.0


def _broker(home: Path, mode: str, port: int) -> LocalBroker:
    security = BrokerSecurity.from_settings(
        mode,  # type: ignore[arg-type]
        KafkaSettings(sasl_username=USER, sasl_password=SecretStr(PASSWORD)),
    )
    return LocalBroker(BrokerPaths(home), REPO / ".cache", port=port, controller_port=port + 1,
                       heap="384m", security=security)


@pytest.fixture(scope="module")
def brokers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LocalBroker]]:
    """A SASL_PLAINTEXT and a SASL_SSL broker with the SCRAM user alice, started side by side."""
    home = tmp_path_factory.mktemp("secured")
    brokers = {"scram": _broker(home / "scram", "sasl-scram", 19192),
               "tls": _broker(home / "tls", "sasl-ssl", 19194)}
    try:
        libs = fetch_kafka(REPO / ".cache")
        started = time.monotonic()
        pids = {name: broker.launch(libs) for name, broker in brokers.items()}
        for name, broker in brokers.items():
            broker.wait_ready(pids[name], timeout=240)
        print(f"\nboth secured brokers served clients {time.monotonic() - started:.1f}s after "
              "the first format began")
        yield brokers
    finally:
        for broker in brokers.values():
            broker.stop()


@pytest.fixture(scope="module")
def scram(brokers: dict[str, LocalBroker]) -> LocalBroker:
    return brokers["scram"]


@pytest.fixture(scope="module")
def tls(brokers: dict[str, LocalBroker]) -> LocalBroker:
    return brokers["tls"]


def roundtrip(settings: KafkaSettings) -> tuple[int, list[Message]]:
    """Publish MESSAGES to a fresh topic with acks=all; read them back; (acks, messages)."""
    topic = f"secure-{uuid.uuid4().hex[:8]}"
    create_missing_topics(settings, [NewTopic(topic, num_partitions=1, replication_factor=1)])
    acks: list[KafkaError | None] = []
    producer = make_producer(settings)
    for n in range(MESSAGES):
        producer.produce(topic, key=f"k{n}", value=f"v{n}",
                         on_delivery=lambda error, _message: acks.append(error))
        producer.poll(0)
    assert producer.flush(60) == 0, "every message must be delivered within a minute"
    consumer = make_consumer(settings, f"secure-{uuid.uuid4().hex[:8]}")
    consumer.assign([TopicPartition(topic, 0, 0)])
    messages: list[Message] = []
    deadline = time.monotonic() + 60
    try:
        while len(messages) < MESSAGES and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                messages.append(message)
    finally:
        consumer.close()
    return sum(error is None for error in acks), messages


def test_right_credentials_publish_and_read_through_the_projects_clients(
    scram: LocalBroker,
) -> None:
    acknowledged, messages = roundtrip(scram.client_settings())
    print(f"SASL_PLAINTEXT/SCRAM-SHA-512 as {USER!r}: acknowledged={acknowledged} "
          f"read={len(messages)}")
    assert acknowledged == MESSAGES
    assert [m.value() for m in messages] == [f"v{n}".encode() for n in range(MESSAGES)]


def test_a_service_with_a_wrong_password_exits_2_with_one_clear_line(
    scram: LocalBroker,
) -> None:
    wrong = scram.client_settings(Credentials(USER, SecretStr(WRONG)))
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "services.metrics_sink"], env={**os.environ, **_service_env(wrong)},
        cwd=REPO, capture_output=True, text=True, timeout=EXIT_BOUND_SECONDS, check=False,
    )
    seconds = time.monotonic() - started
    expected = (f"metrics-sink: cannot start: Kafka at {scram.bootstrap_servers} rejected the "
                f"credentials of user '{USER}' (SASL/SCRAM-SHA-512 authentication failed)")
    print(f"wrong password: exit code {result.returncode} after {seconds:.1f}s; "
          f"stderr's last line: {result.stderr.strip().splitlines()[-1]!r}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == expected
    assert "Traceback" not in result.stderr
    for text in (result.stdout, result.stderr):
        assert WRONG not in text
        assert PASSWORD not in text


@pytest.mark.parametrize("module", ["services.metrics_sink", "services.features"])
def test_a_running_service_shows_the_password_nowhere(
    scram: LocalBroker, tmp_path: Path, module: str
) -> None:
    """A confluent-kafka service and the faust one log in with the settings' credentials."""
    settings = scram.client_settings()
    prefix = f"t{uuid.uuid4().hex[:10]}-"
    ensure_topics(settings, prefix)
    log = tmp_path / "service.log"
    service = ServiceProcess(module, _service_env(settings, prefix), log)
    service.start(timeout=120)
    try:
        pages = {path: _get(f"http://127.0.0.1:{service.metrics_port}{path}")
                 for path in ("/metrics", "/health")}
    finally:
        code = service.stop()
    output = log.read_text(errors="replace")
    files = [path for path in scram.paths.home.rglob("*") if path.is_file()]
    leaking = [path for path in files if PASSWORD.encode() in _bytes_of(path)]
    print(f"{module} exit code {code}; /metrics {len(pages['/metrics'])} bytes, /health "
          f"{len(pages['/health'])} bytes, log {len(output)} bytes; {len(files)} files under the "
          f"broker home, {len(leaking)} holding the password")
    assert code == 0
    assert "streamml_" in pages["/metrics"], "the page must be the service's real metrics"
    for name, text in {**pages, "log": output}.items():
        assert PASSWORD not in text, f"the password leaked into {name}"
    assert leaking == []


def test_sasl_ssl_verifies_the_broker_and_the_user(tls: LocalBroker) -> None:
    settings = tls.client_settings()
    assert settings.ssl_ca_location == tls.paths.tls.ca_certificate
    acknowledged, messages = roundtrip(settings)

    wrong = tls.client_settings(Credentials(USER, SecretStr(WRONG)))
    with pytest.raises(CredentialsRejected, match=f"rejected the credentials of user '{USER}'"
                       ) as rejected:
        wait_for_broker(wrong, timeout=30)

    untrusting = settings.model_copy(update={"ssl_ca_location": None})
    with pytest.raises(BrokerUnavailable) as unverified:
        wait_for_broker(untrusting, timeout=5)

    print(f"SASL_SSL as {USER!r}: acknowledged={acknowledged} read={len(messages)}; "
          f"wrong password: {rejected.value}; without the CA: {unverified.value}")
    assert acknowledged == MESSAGES
    assert len(messages) == MESSAGES
    assert not isinstance(unverified.value, CredentialsRejected)
    assert "certificate verify failed" in str(unverified.value)
    assert WRONG not in str(rejected.value)


def _service_env(settings: KafkaSettings, prefix: str = "unused-") -> dict[str, str]:
    env = {
        "STREAMML_KAFKA__BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "STREAMML_KAFKA__SECURITY_PROTOCOL": settings.security_protocol,
        "STREAMML_KAFKA__SASL_MECHANISM": str(settings.sasl_mechanism),
        "STREAMML_KAFKA__SASL_USERNAME": str(settings.sasl_username),
        "STREAMML_KAFKA__SASL_PASSWORD": (
            settings.sasl_password.get_secret_value() if settings.sasl_password else ""),
        "STREAMML_TOPIC_PREFIX": prefix,
        "STREAMML_METRICS_PORT": "0",
    }
    if settings.ssl_ca_location is not None:
        env["STREAMML_KAFKA__SSL_CA_LOCATION"] = str(settings.ssl_ca_location)
    return env


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as reply:  # noqa: S310 - local http
        text: str = reply.read().decode()
    return text


def _bytes_of(path: Path) -> bytes:
    """The file's bytes; none for a file the running broker renamed away meanwhile (it writes
    checkpoints as ``*.tmp`` and renames them)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
