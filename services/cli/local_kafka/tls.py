"""A self-signed certificate authority and a broker certificate for the local TLS listener.

Made once with ``openssl`` under ``<broker home>/tls`` and reused: ``ca.pem`` is what clients
trust (``STREAMML_KAFKA__SSL_CA_LOCATION``); ``broker-keystore.pem`` holds the broker's private
key and certificate chain (a PEM keystore, readable only by its owner); the certificate names
every broker host as an IP address, so clients can verify the host name.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from services.cli.local_kafka.process import BrokerError, run_tool

CA_DAYS = 3650
CERT_DAYS = 825


@dataclass(frozen=True)
class TlsFiles:
    """Where the TLS material of one broker home lives."""

    folder: Path

    @property
    def ca_certificate(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    @property
    def keystore(self) -> Path:
        return self.folder / "broker-keystore.pem"

    @property
    def hosts_file(self) -> Path:
        return self.folder / "hosts"

    def exists_for(self, hosts: Sequence[str]) -> bool:
        """True if the material exists and its certificate names exactly ``hosts``."""
        try:
            recorded = self.hosts_file.read_text().split()
        except FileNotFoundError:
            return False
        return (sorted(recorded) == sorted(hosts) and self.ca_certificate.exists()
                and self.keystore.exists())


def ensure_tls(folder: Path, hosts: Sequence[str]) -> TlsFiles:
    """Return the CA and broker keystore under ``folder``, making them if missing.

    A certificate made for other hosts is replaced by one signed by the same CA, so clients that
    trust ``ca.pem`` keep working.
    """
    files = TlsFiles(folder)
    if files.exists_for(hosts):
        return files
    if shutil.which("openssl") is None:
        raise BrokerError("openssl is needed to make the broker's TLS certificate; install it")
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    if not (files.ca_certificate.exists() and files.ca_key.exists()):
        _make_ca(files)
    _make_broker_certificate(files, hosts)
    files.hosts_file.write_text(" ".join(hosts) + "\n")
    return files


def _make_ca(files: TlsFiles) -> None:
    run_tool([
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
        "-keyout", str(files.ca_key), "-out", str(files.ca_certificate),
        "-days", str(CA_DAYS), "-subj", "/CN=streamml local Kafka CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ])
    os.chmod(files.ca_key, 0o600)


def _make_broker_certificate(files: TlsFiles, hosts: Sequence[str]) -> None:
    key = files.folder / "broker.key"
    request = files.folder / "broker.csr"
    certificate = files.folder / "broker.pem"
    extensions = files.folder / "broker.ext"
    names = ",".join([*(f"IP:{host}" for host in hosts), "DNS:localhost"])
    extensions.write_text(
        f"subjectAltName={names}\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
    )
    run_tool([
        "openssl", "req", "-newkey", "rsa:2048", "-nodes", "-sha256",
        "-keyout", str(key), "-out", str(request), "-subj", f"/CN={hosts[0]}",
    ])
    run_tool([
        "openssl", "x509", "-req", "-in", str(request), "-sha256",
        "-CA", str(files.ca_certificate), "-CAkey", str(files.ca_key), "-CAcreateserial",
        "-out", str(certificate), "-days", str(CERT_DAYS), "-extfile", str(extensions),
    ])
    keystore = key.read_text() + certificate.read_text() + files.ca_certificate.read_text()
    files.keystore.touch(mode=0o600)
    os.chmod(files.keystore, 0o600)
    files.keystore.write_text(keystore)
    for leftover in (key, request, extensions):
        leftover.unlink()
