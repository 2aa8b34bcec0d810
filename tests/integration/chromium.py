"""Open a local page in headless Chromium (Debian's ``chromium``): its DOM after load, a
screenshot, and the console messages it logged.

How a page is judged rendered, without a debugging protocol client:

- ``--dump-dom`` prints the DOM after the page's ``load`` event. The report's inline script
  sets ``<body data-render="ok">`` on load only when every image decoded and no script error,
  ``console.error`` or failed resource load was seen; an error before the check installs itself
  would stop it, leaving ``pending``. So ``ok`` proves the script ran and found nothing wrong.
- ``--enable-logging=stderr --v=0`` makes Chromium log every console message of the page to
  stderr as ``...:CONSOLE:<line>] "<message>", source: <url>``, whatever its level. The report
  logs nothing, so any such line is a problem.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--no-first-run", "--hide-scrollbars",
    "--enable-logging=stderr", "--v=0",
)
CONSOLE_LINE = re.compile(r"CONSOLE(\(\d+\)|:\d+)\]\s*(.*)")


@dataclass(frozen=True)
class PageRun:
    """What one headless run printed: the DOM (``--dump-dom``) and the console messages."""

    stdout: str
    console: list[str]


def chromium() -> str:
    """The path of the ``chromium`` binary; fails the test (not skips) when it is missing."""
    binary = shutil.which("chromium")
    assert binary is not None, ("chromium is not installed (Debian: apt-get install chromium; "
                                "scripts/install.sh does it when run as root)")
    return binary


def open_page(page: Path, profile: Path, *extra: str, timeout: float = 90.0) -> PageRun:
    """Load ``page`` once with ``extra`` flags (``--dump-dom``, ``--screenshot=...``)."""
    command = [chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"chromium exited {done.returncode}: {done.stderr[-2000:]}"
    console = [match.group(2) for match in map(CONSOLE_LINE.search, done.stderr.splitlines())
               if match]
    return PageRun(done.stdout, console)


def render_verdict(dom: str) -> tuple[str | None, str | None]:
    """The ``data-render`` attribute of ``<body>`` and the page-check text in the dumped DOM."""
    body = re.search(r"<body[^>]*\bdata-render=\"([^\"]*)\"", dom)
    status = re.search(r'id="render-status"[^>]*>([^<]*)<', dom)
    return (body.group(1) if body else None, status.group(1) if status else None)
