"""Translate :class:`~services.common.settings.KafkaSettings` into faust's broker options."""

from __future__ import annotations

import ssl
from typing import Any

import faust

from services.common.settings import KafkaSettings


def faust_broker_options(kafka: KafkaSettings) -> dict[str, Any]:
    """``broker`` and ``broker_credentials`` for :class:`faust.App` from the shared settings."""
    servers = [server.strip() for server in kafka.bootstrap_servers.split(",")]
    options: dict[str, Any] = {
        "broker": [f"kafka://{server}" for server in servers],
        "broker_client_id": kafka.client_id,
    }
    context = _ssl_context(kafka) if kafka.security_protocol.endswith("SSL") else None
    if kafka.security_protocol.startswith("SASL"):
        if kafka.sasl_username is None or kafka.sasl_password is None:
            raise ValueError("SASL needs STREAMML_KAFKA__SASL_USERNAME and __SASL_PASSWORD")
        options["broker_credentials"] = faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value(),
            mechanism=kafka.sasl_mechanism or "PLAIN",
            ssl_context=context,
        )
    elif context is not None:
        options["broker_credentials"] = faust.SSLCredentials(context)
    return options


def _ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(
        cafile=str(kafka.ssl_ca_location) if kafka.ssl_ca_location else None
    )
    if kafka.ssl_certificate_location is not None:
        context.load_cert_chain(
            str(kafka.ssl_certificate_location),
            str(kafka.ssl_key_location) if kafka.ssl_key_location else None,
            kafka.ssl_key_password.get_secret_value() if kafka.ssl_key_password else None,
        )
    return context
