"""The model service under test in ``streamml bench model`` (and ``streamml bench model-memory``):
started alone on the ``clicks`` spec under a fresh topic prefix, and read from outside through
its ``/metrics`` and ``/health``."""

from __future__ import annotations

import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson

from services.cli.bench.scrape import by_label, scrape, total
from services.cli.process import ServiceProcess
from services.common.settings import KafkaSettings

SPEC = "clicks"


def new_prefix() -> str:
    return f"bm{uuid.uuid4().hex[:8]}-"


def model_service(kafka: KafkaSettings, prefix: str, log: Path,
                  extra: dict[str, str] | None = None) -> ServiceProcess:
    """``python -m services.model`` on the ``clicks`` spec under ``prefix`` (not started);
    ``extra`` adds environment variables (``STREAMML_MODEL__*``, ``STREAMML_KAFKA__EXTRA``)."""
    return ServiceProcess("services.model", {
        "STREAMML_TOPIC_PREFIX": prefix,
        "STREAMML_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "STREAMML_SPEC": SPEC, "STREAMML_LOG_LEVEL": "WARNING", **(extra or {}),
    }, log)


def port_of(process: ServiceProcess) -> int:
    if process.metrics_port is None:
        raise RuntimeError("the service announced no metrics port")
    return process.metrics_port


def labels_learned(samples: dict[str, float], **labels: str) -> float:
    """Labels learned: every model learns each label, so the most any one model learned."""
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    chosen = {key: value for key, value in samples.items() if all(w in key for w in wanted)}
    return max(by_label(chosen, "streamml_model_labels_learned_total", "model").values(),
               default=0.0)


def health(port: int) -> dict[str, Any]:
    """The service's ``/health`` details (``checkpoints``, ``pending``, ...)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        document: dict[str, Any] = orjson.loads(response.read())
    details = document.get("details", document)
    return details if isinstance(details, dict) else {}


def wait_for(port: int, name: str, at_least: float, timeout: float) -> float:
    """Poll metric ``name`` until it reaches ``at_least``; return its last value."""
    deadline = time.monotonic() + timeout
    value = 0.0
    while time.monotonic() < deadline:
        value = total(scrape(port), name)
        if value >= at_least:
            break
        time.sleep(0.2)
    return value
