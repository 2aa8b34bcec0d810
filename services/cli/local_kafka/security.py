"""SASL/SCRAM (and TLS) for the local broker's client listener.

Modes: ``plaintext`` (no authentication), ``sasl-scram`` (SASL_PLAINTEXT with SCRAM-SHA-512) and
``sasl-ssl`` (SASL_SSL: SCRAM-SHA-512 over TLS with a self-signed CA, see
:mod:`~services.cli.local_kafka.tls`). The controller listener stays PLAINTEXT on loopback.

Two SCRAM users are created when the storage is formatted: the client user named by the
settings (``STREAMML_KAFKA__SASL_USERNAME`` / ``__SASL_PASSWORD``), and ``streamml-broker``,
which the broker uses for itself, with a random password kept in ``<home>/secrets`` (mode 0600).
Only salted SCRAM credentials reach the storage tool's command line, never a password. Clients
are authenticated, not authorised: no ACLs are set.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from pydantic import SecretStr

from services.cli.local_kafka.process import BrokerError
from services.cli.local_kafka.tls import TlsFiles
from services.common.settings import KafkaSettings, SecurityProtocol

SecurityMode = Literal["plaintext", "sasl-scram", "sasl-ssl"]
SECURITY_MODES: tuple[str, ...] = get_args(SecurityMode)
MECHANISM = "SCRAM-SHA-512"
BROKER_USER = "streamml-broker"
SCRAM_ITERATIONS = 8192
_PROTOCOLS: dict[SecurityMode, SecurityProtocol] = {
    "plaintext": "PLAINTEXT", "sasl-scram": "SASL_PLAINTEXT", "sasl-ssl": "SASL_SSL",
}


@dataclass(frozen=True)
class Credentials:
    """A SCRAM user name and its password (never printed)."""

    username: str
    password: SecretStr


@dataclass(frozen=True)
class BrokerSecurity:
    """The security of a broker's client listener and the client user made at format time."""

    mode: SecurityMode = "plaintext"
    client: Credentials | None = None

    @classmethod
    def from_settings(
        cls, mode: SecurityMode, kafka: KafkaSettings, formatted: bool = False
    ) -> BrokerSecurity:
        """The ``mode`` with the client user of ``kafka``.

        A SASL mode needs the user and password to format new storage; storage already
        formatted has its users, so then they may be left out.
        """
        if mode == "plaintext":
            return cls()
        if kafka.sasl_username is None or kafka.sasl_password is None:
            if formatted:
                return cls(mode)
            raise BrokerError(
                f"--security {mode} creates a SCRAM user from the settings: set "
                "STREAMML_KAFKA__SASL_USERNAME and STREAMML_KAFKA__SASL_PASSWORD"
            )
        if kafka.sasl_username == BROKER_USER:
            raise BrokerError(f"the user name {BROKER_USER!r} is the broker's own; choose another")
        return cls(mode, Credentials(kafka.sasl_username, kafka.sasl_password))

    @property
    def protocol(self) -> SecurityProtocol:
        """The client listener's security protocol."""
        return _PROTOCOLS[self.mode]

    @property
    def uses_tls(self) -> bool:
        return self.mode == "sasl-ssl"

    @property
    def uses_sasl(self) -> bool:
        return self.mode != "plaintext"

    def client_settings(
        self, bootstrap_servers: str, credentials: Credentials | None, tls: TlsFiles | None
    ) -> KafkaSettings:
        """Settings for a client of this listener logging in as ``credentials``."""
        if not self.uses_sasl or credentials is None:
            return KafkaSettings(bootstrap_servers=bootstrap_servers)
        return KafkaSettings(
            bootstrap_servers=bootstrap_servers, security_protocol=self.protocol,
            sasl_mechanism=MECHANISM, sasl_username=credentials.username,
            sasl_password=credentials.password,
            ssl_ca_location=tls.ca_certificate if tls is not None and self.uses_tls else None,
        )


def listener_properties(
    security: BrokerSecurity, broker: Credentials | None, tls: TlsFiles | None
) -> dict[str, str]:
    """The ``server.properties`` entries that secure the client listener (none for plaintext)."""
    if not security.uses_sasl:
        return {}
    if broker is None:
        raise BrokerError("a SASL listener needs the broker's own SCRAM credentials")
    listener = security.protocol.lower()
    password = broker.password.get_secret_value()
    properties = {
        "sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        f"listener.name.{listener}.{MECHANISM.lower()}.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{broker.username}" password="{password}";'
        ),
    }
    if security.uses_tls:
        if tls is None:
            raise BrokerError("a SASL_SSL listener needs TLS material")
        properties.update({
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(tls.keystore.resolve()),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(tls.ca_certificate.resolve()),
            "ssl.endpoint.identification.algorithm": "https",
        })
    return properties


def scram_credential(
    credentials: Credentials, iterations: int = SCRAM_ITERATIONS, salt: bytes | None = None
) -> str:
    """The storage tool's ``--add-scram`` value for ``credentials``, salted and hashed.

    ``SaltedPassword = Hi(password, salt, i)`` of RFC 5802, which is PBKDF2 with HMAC-SHA-512:
    the broker stores exactly this, so the clear password never leaves this process.
    """
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac(
        "sha512", credentials.password.get_secret_value().encode(), salt, iterations
    )
    return (
        f"{MECHANISM}=[name={credentials.username},iterations={iterations},"
        f'salt="{base64.b64encode(salt).decode()}",'
        f'saltedpassword="{base64.b64encode(salted).decode()}"]'
    )


def broker_credentials(secrets_dir: Path) -> Credentials:
    """The broker's own SCRAM user, its password made once and kept in ``secrets_dir``."""
    path = secrets_dir / "broker-user.password"
    if not path.exists():
        secrets_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(secrets_dir, 0o700)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    return Credentials(BROKER_USER, SecretStr(path.read_text().strip()))


def record_security(path: Path, security: BrokerSecurity) -> None:
    """Write which mode and client user a freshly formatted storage was made for."""
    client = security.client.username if security.client is not None else None
    path.write_text(json.dumps({"mode": security.mode, "client_user": client}) + "\n")


def check_recorded(path: Path, security: BrokerSecurity) -> None:
    """Refuse to start a formatted storage in another mode, or for another client user, than
    it was formatted for. Storage formatted before security existed counts as ``plaintext``.
    """
    try:
        recorded = json.loads(path.read_text())
    except FileNotFoundError:
        recorded = {"mode": "plaintext", "client_user": None}
    if recorded["mode"] != security.mode:
        raise BrokerError(
            f"the broker storage in {path.parent} was formatted for --security "
            f"{recorded['mode']}; start it that way, or use another home for {security.mode}"
        )
    if security.client is None:
        return
    wanted = security.client.username
    if recorded["client_user"] != wanted:
        raise BrokerError(
            f"the broker storage in {path.parent} has the SCRAM user "
            f"{recorded['client_user']!r}, not {wanted!r}; set STREAMML_KAFKA__SASL_USERNAME "
            "to it, or use another home"
        )


def recorded_mode(path: Path) -> str:
    """The mode a storage was formatted for (``plaintext`` if unrecorded or not formatted)."""
    try:
        return str(json.loads(path.read_text())["mode"])
    except (FileNotFoundError, KeyError, ValueError):
        return "plaintext"
