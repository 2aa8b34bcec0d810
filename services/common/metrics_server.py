"""An HTTP endpoint per service: ``/metrics`` (Prometheus text) and ``/health`` (JSON).

``/health`` answers 200 while the service's health check returns ``ok=True`` and 503 otherwise.
The server runs on a daemon thread and is started by a service's wiring function, never at import.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


@dataclass
class Health:
    """What ``/health`` reports: a verdict plus details for humans."""

    ok: bool
    details: dict[str, Any] = field(default_factory=dict)


class MetricsServer:
    """Serves ``registry`` and ``health_check`` on ``host:port`` (port 0 picks a free one)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        health_check: Callable[[], Health],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._registry = registry
        self._health_check = health_check
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-server", daemon=True
        )

    @property
    def port(self) -> int:
        """The port actually bound."""
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        """Start serving in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        registry = self._registry
        health_check = self._health_check

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._reply(200, CONTENT_TYPE_LATEST, generate_latest(registry))
                elif path in ("/health", "/healthz"):
                    health = health_check()
                    body = orjson.dumps({"ok": health.ok, **health.details}, default=str)
                    self._reply(200 if health.ok else 503, "application/json", body)
                else:
                    self._reply(404, "text/plain", b"not found: try /metrics or /health\n")

            def _reply(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
