"""The local broker's security and cluster configuration, without starting a broker."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
from confluent_kafka import KafkaError
from pydantic import SecretStr

from services.cli.local_kafka.broker import BrokerError, new_cluster_id
from services.cli.local_kafka.cluster import LocalCluster
from services.cli.local_kafka.config import Quorum, Voter, server_properties
from services.cli.local_kafka.security import (
    BROKER_USER,
    BrokerSecurity,
    Credentials,
    check_recorded,
    listener_properties,
    record_security,
    recorded_mode,
    scram_credential,
)
from services.cli.local_kafka.tls import TlsFiles
from services.common.kafka import CredentialsRejected, _rejection
from services.common.settings import KafkaSettings

SECRET = "client-secret-never-shown"  # noqa: S105 - a test user's password
ALICE = KafkaSettings(sasl_username="alice", sasl_password=SecretStr(SECRET))


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_scram_credential_is_salted_pbkdf2_and_never_the_password() -> None:
    salt = b"0123456789abcdef"
    value = scram_credential(Credentials("alice", SecretStr(SECRET)), iterations=4096, salt=salt)
    match = re.fullmatch(
        r'SCRAM-SHA-512=\[name=alice,iterations=4096,salt="([^"]+)",saltedpassword="([^"]+)"\]',
        value,
    )
    print(value)
    assert match is not None
    assert base64.b64decode(match[1]) == salt
    expected = hashlib.pbkdf2_hmac("sha512", SECRET.encode(), salt, 4096)
    assert base64.b64decode(match[2]) == expected
    assert SECRET not in value


def test_sasl_modes_need_a_user_for_new_storage_but_not_for_formatted_storage() -> None:
    with pytest.raises(BrokerError, match="STREAMML_KAFKA__SASL_USERNAME"):
        BrokerSecurity.from_settings("sasl-scram", KafkaSettings())
    formatted = BrokerSecurity.from_settings("sasl-scram", KafkaSettings(), formatted=True)
    assert formatted.client is None
    with pytest.raises(BrokerError, match="the broker's own"):
        BrokerSecurity.from_settings(
            "sasl-ssl", KafkaSettings(sasl_username=BROKER_USER, sasl_password=SecretStr("x")))
    security = BrokerSecurity.from_settings("sasl-ssl", ALICE)
    print(repr(security))
    assert security.protocol == "SASL_SSL"
    assert SECRET not in repr(security)


def test_listener_properties_hold_the_broker_user_only(tmp_path: Path) -> None:
    broker = Credentials(BROKER_USER, SecretStr("broker-pass"))
    security = BrokerSecurity.from_settings("sasl-ssl", ALICE)
    entries = listener_properties(security, broker, TlsFiles(tmp_path))
    text = server_properties("127.0.0.1", 19192, 19193, tmp_path, protocol=security.protocol,
                             security=entries)
    properties = _properties(text)
    print(text)
    assert properties["listeners"] == "SASL_SSL://127.0.0.1:19192,CONTROLLER://127.0.0.1:19193"
    assert properties["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"
    assert properties["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert f'username="{BROKER_USER}" password="broker-pass"' in text
    assert properties["ssl.keystore.type"] == "PEM"
    assert SECRET not in text
    assert listener_properties(BrokerSecurity(), None, None) == {}


def test_cluster_nodes_share_static_voters_and_replicate_three_times(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, tmp_path / "cache", size=3, port=19392,
                           controller_port=19393)
    nodes = cluster.nodes
    quorum = nodes[1].quorum
    assert quorum is not None
    text = server_properties(nodes[1].host, nodes[1].port, nodes[1].controller_port,
                             nodes[1].paths.data, quorum=quorum)
    properties = _properties(text)
    print(cluster.bootstrap_servers, properties["controller.quorum.voters"])
    assert cluster.hosts == ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
    assert properties["node.id"] == "2"
    assert properties["controller.quorum.voters"] == (
        "1@127.0.0.11:19393,2@127.0.0.12:19393,3@127.0.0.13:19393")
    assert "controller.quorum.bootstrap.servers" not in properties
    assert "controlled.shutdown.enable" not in properties  # a stopping node hands over leaders
    for key in ("default.replication.factor", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor"):
        assert properties[key] == "3"
    assert properties["min.insync.replicas"] == "2"
    assert properties["transaction.state.log.min.isr"] == "2"
    with pytest.raises(BrokerError, match="3 to 9 nodes"):
        LocalCluster(tmp_path, tmp_path, size=2)


def test_single_node_bootstraps_its_own_quorum(tmp_path: Path) -> None:
    properties = _properties(server_properties("127.0.0.1", 9092, 9093, tmp_path))
    assert properties["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert properties["offsets.topic.replication.factor"] == "1"
    assert "controller.quorum.voters" not in properties
    # Nobody to hand leaders to, and its fenced phase would make clients forget it (#5301).
    assert properties["controlled.shutdown.enable"] == "false"
    quorum = Quorum(1, (Voter(1, "127.0.0.11", 9093),), "id")
    assert str(quorum.voters[0]) == "1@127.0.0.11:9093"


def test_formatted_storage_keeps_its_mode_and_user(tmp_path: Path) -> None:
    record = tmp_path / "security.json"
    assert recorded_mode(record) == "plaintext"
    check_recorded(record, BrokerSecurity())
    with pytest.raises(BrokerError, match="formatted for --security plaintext"):
        check_recorded(record, BrokerSecurity.from_settings("sasl-scram", ALICE))
    record_security(record, BrokerSecurity.from_settings("sasl-scram", ALICE))
    assert recorded_mode(record) == "sasl-scram"
    assert SECRET not in record.read_text()
    check_recorded(record, BrokerSecurity("sasl-scram"))
    bob = KafkaSettings(sasl_username="bob", sasl_password=SecretStr("x"))
    with pytest.raises(BrokerError, match="SCRAM user 'alice', not 'bob'"):
        check_recorded(record, BrokerSecurity.from_settings("sasl-scram", bob))


def test_cluster_ids_look_like_kafkas() -> None:
    ids = {new_cluster_id() for _ in range(200)}
    print(sorted(ids)[:3])
    assert len(ids) == 200
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)


def test_a_refused_login_becomes_one_clear_error_without_the_password() -> None:
    settings = KafkaSettings(bootstrap_servers="b:9092", sasl_mechanism="SCRAM-SHA-512",
                             sasl_username="alice", sasl_password=SecretStr(SECRET),
                             security_protocol="SASL_PLAINTEXT")
    refused = KafkaError(KafkaError._AUTHENTICATION, (
        "sasl_plaintext://b:9092/bootstrap: SASL authentication error: Authentication failed "
        "during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"))
    unsupported = KafkaError(KafkaError._AUTHENTICATION, (
        "sasl_plaintext://b:9092/bootstrap: Unsupported SASL mechanism: broker's supported "
        "mechanisms: PLAIN"))
    transport = KafkaError(KafkaError._TRANSPORT, "connection refused")
    rejected = _rejection(settings, [transport, refused])
    other = _rejection(settings, [unsupported])
    print(rejected, other, sep="\n")
    assert isinstance(rejected, CredentialsRejected)
    assert str(rejected) == ("Kafka at b:9092 rejected the credentials of user 'alice' "
                             "(SASL/SCRAM-SHA-512 authentication failed)")
    assert str(other) == ("Kafka at b:9092 refused the SASL/SCRAM-SHA-512 login of user 'alice': "
                          "Unsupported SASL mechanism: broker's supported mechanisms: PLAIN")
    assert _rejection(settings, [transport]) is None


def test_the_kafka_command_asks_for_credentials_before_touching_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.cli.main import main

    monkeypatch.setenv("STREAMML_HOME", str(tmp_path))
    for name in ("STREAMML_KAFKA__SASL_USERNAME", "STREAMML_KAFKA__SASL_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    code = main(["kafka", "start", "--security", "sasl-scram", "--port", "19196"])
    mixed = main(["kafka", "start", "--cluster", "3", "--security", "sasl-ssl"])
    errors = capsys.readouterr().err
    print(errors)
    assert code == 2
    assert "set STREAMML_KAFKA__SASL_USERNAME and STREAMML_KAFKA__SASL_PASSWORD" in errors
    assert mixed == 2
    assert "a --cluster is plaintext" in errors
    assert list(tmp_path.iterdir()) == [], "nothing may be created before the check"
