"""Settings from ``STREAMML_*`` environment variables: nesting, secrets, validation."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from pydantic import SecretStr, ValidationError

from services.common.settings import KafkaSettings, Settings
from services.model.settings import ModelSettings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No ``STREAMML_*`` variable of the surrounding shell leaks into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("STREAMML_"):
            monkeypatch.delenv(name)
    yield monkeypatch


def test_defaults_without_environment() -> None:
    settings = Settings()
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.kafka.security_protocol == "PLAINTEXT"
    assert settings.topic_prefix == ""
    assert settings.spec == "clicks"


def test_prefixed_and_nested_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMML_KAFKA__BOOTSTRAP_SERVERS", "b1:9092,b2:9093")
    monkeypatch.setenv("STREAMML_KAFKA__CLIENT_ID", "svc")
    monkeypatch.setenv("STREAMML_TOPIC_PREFIX", "acme.")
    monkeypatch.setenv("STREAMML_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("STREAMML_METRICS_PORT", "9999")
    settings = Settings()
    assert settings.kafka.bootstrap_servers == "b1:9092,b2:9093"
    assert settings.kafka.client_id == "svc"
    assert settings.topic_prefix == "acme."
    assert settings.log_level == "DEBUG"
    assert settings.metrics_port == 9999


def test_unprefixed_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOPIC_PREFIX", "wrong.")
    monkeypatch.setenv("KAFKA__BOOTSTRAP_SERVERS", "wrong:1")
    settings = Settings()
    assert settings.topic_prefix == ""
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"


def test_service_options_nest_under_their_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMML_MODEL__PENDING_CAPACITY", "123")
    settings = ModelSettings()
    assert settings.model.pending_capacity == 123
    assert settings.metrics_port == 9103


def test_invalid_value_in_environment_is_a_validation_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAMML_MODEL__PENDING_CAPACITY", "0")
    with pytest.raises(ValidationError, match="pending_capacity"):
        ModelSettings()


def test_sasl_password_is_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMML_KAFKA__SASL_PASSWORD", "hunter2-very-secret")
    monkeypatch.setenv("STREAMML_KAFKA__SSL_KEY_PASSWORD", "keypass-very-secret")
    settings = Settings()
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == "hunter2-very-secret"
    for text in (repr(settings), str(settings), repr(settings.kafka), str(settings.kafka),
                 settings.model_dump_json()):
        assert "hunter2" not in text
        assert "keypass" not in text


@pytest.mark.parametrize(
    "servers", ["", "localhost", "localhost:", ":9092", "host:port", "a:9092,,b:9092"]
)
def test_bad_bootstrap_servers_are_rejected(servers: str) -> None:
    with pytest.raises(ValidationError, match="host:port"):
        KafkaSettings(bootstrap_servers=servers)


def test_bad_bootstrap_servers_from_environment_are_rejected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAMML_KAFKA__BOOTSTRAP_SERVERS", "broker")
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize("servers", ["broker:9092", "a:1, b:2", "[::1]:9092"])
def test_good_bootstrap_servers_are_accepted(servers: str) -> None:
    assert KafkaSettings(bootstrap_servers=servers).bootstrap_servers == servers


def test_plaintext_client_config_has_no_security_keys() -> None:
    config = KafkaSettings().client_config()
    assert config == {"bootstrap.servers": "127.0.0.1:9092", "client.id": "streamml",
                      "security.protocol": "PLAINTEXT"}


def test_client_config_includes_sasl_and_ssl_when_set() -> None:
    kafka = KafkaSettings(
        bootstrap_servers="broker:9093", security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512", sasl_username="alice",
        sasl_password=SecretStr("s3cret"), ssl_ca_location="/etc/ca.pem",
        ssl_certificate_location="/etc/cert.pem", ssl_key_location="/etc/key.pem",
        ssl_key_password=SecretStr("k3y"), extra={"linger.ms": "5"},
    )
    config = kafka.client_config()
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert config["sasl.username"] == "alice"
    assert config["sasl.password"] == "s3cret"
    assert config["ssl.ca.location"] == "/etc/ca.pem"
    assert config["ssl.certificate.location"] == "/etc/cert.pem"
    assert config["ssl.key.location"] == "/etc/key.pem"
    assert config["ssl.key.password"] == "k3y"
    assert config["linger.ms"] == "5"


def test_unknown_kafka_setting_is_rejected() -> None:
    with pytest.raises(ValidationError):
        KafkaSettings.model_validate({"bootstrap_server": "typo:9092"})


def test_topic_prefix_is_applied_to_topics_and_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMML_TOPIC_PREFIX", "team-a.")
    settings = Settings()
    assert settings.topic("events") == "team-a.events"
    assert settings.topic("dead-letters") == "team-a.dead-letters"
    assert settings.group("model") == "team-a.streamml-model"


def test_topic_prefix_with_unsafe_characters_is_rejected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAMML_TOPIC_PREFIX", "bad prefix/")
    with pytest.raises(ValidationError):
        Settings()


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.spec = "other"  # type: ignore[misc]


def test_batching_is_eager_on_the_prediction_path_and_patient_off_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.drift.service import DriftSettings
    from services.metrics_sink.service import SinkSettings

    assert ModelSettings().batch.consumer_config() == {"fetch.min.bytes": 1,
                                                       "fetch.wait.max.ms": 500}
    for off_path in (DriftSettings(), SinkSettings()):
        assert off_path.batch.consumer_config() == {"fetch.min.bytes": 65_536,
                                                    "fetch.wait.max.ms": 100}
    monkeypatch.setenv("STREAMML_BATCH__MAX_MESSAGES", "50")
    monkeypatch.setenv("STREAMML_BATCH__LINGER_MS", "0")
    drift = DriftSettings()
    assert (drift.batch.max_messages, drift.batch.linger_ms) == (50, 0.0)
    assert drift.batch.fetch_min_bytes == 65_536, "a setting given keeps the others' defaults"


def test_a_batch_of_no_messages_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMML_BATCH__MAX_MESSAGES", "0")
    with pytest.raises(ValidationError, match="max_messages"):
        ModelSettings()
