"""The peers' own virtualenv: quixstreams (which pins its own confluent-kafka) and the project's
River, kept out of the project's environment.

Created on first use under the streamml home folder (``.streamml/bench-peers-venv``) with
``python -m venv`` and pip from the package index; reused while the pins recorded in it
(:data:`MARKER`) match what is asked. Any failure (no network, no pip, a wheel that does not
build) is returned as a sentence, never raised: the bench reports the peer as not measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

QUIXSTREAMS_VERSION = "3.28.1"
"""The quixstreams release the bench measures (installs on Python 3.11 with confluent-kafka
2.12; its JSON serde uses orjson)."""
MARKER = "streamml-peers.json"
"""File in the virtualenv naming the requirements it was made with."""
INSTALL_TIMEOUT = 900.0


@dataclass(frozen=True)
class PeerVenv:
    """A ready virtualenv, or why there is none (``python`` is None then)."""

    path: Path
    python: Path | None
    requirements: tuple[str, ...]
    error: str | None = None
    created: bool = False


def requirements(quixstreams: str, river: str) -> tuple[str, ...]:
    """The pins of the peers' virtualenv.

    >>> requirements("3.28.1", "0.26.1")
    ('quixstreams==3.28.1', 'river==0.26.1', 'orjson')
    """
    return (f"quixstreams=={quixstreams}", f"river=={river}", "orjson")


def _matches(path: Path, wanted: tuple[str, ...]) -> bool:
    try:
        recorded = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(recorded, dict) and tuple(recorded.get("requirements", ())) == wanted


def ensure_peer_venv(path: Path, wanted: tuple[str, ...], log: Path,
                     timeout: float = INSTALL_TIMEOUT) -> PeerVenv:
    """The virtualenv at ``path`` with ``wanted`` installed: reused when its marker matches,
    else (re)made; pip's output goes to ``log``. Never raises for a failed install."""
    python = path / "bin" / "python"
    if python.is_file() and _matches(path, wanted):
        return PeerVenv(path, python, wanted)
    log.parent.mkdir(parents=True, exist_ok=True)
    (path / MARKER).unlink(missing_ok=True)  # a half-done install is not taken as ready
    try:
        with log.open("w") as out:
            if not python.is_file():
                subprocess.run([sys.executable, "-m", "venv", str(path)], check=True,  # noqa: S603
                               stdout=out, stderr=subprocess.STDOUT, timeout=120)
            subprocess.run([str(python), "-m", "pip", "install",  # noqa: S603 - pinned names
                            "--disable-pip-version-check", "--quiet", *wanted], check=True,
                           stdout=out,
                           stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return PeerVenv(path, None, wanted, f"installing {' '.join(wanted)} took more than "
                        f"{timeout:.0f} s (see {log})")
    except subprocess.CalledProcessError as error:
        step = "pip install " + " ".join(wanted) if error.cmd[0] == str(python) else "venv"
        return PeerVenv(path, None, wanted, f"could not create the peers' virtualenv {path}: "
                        f"{step} failed with exit status {error.returncode} (see {log})")
    except OSError as error:
        return PeerVenv(path, None, wanted, f"could not create the peers' virtualenv {path}: "
                        f"{error} (see {log})")
    (path / MARKER).write_text(json.dumps({"requirements": list(wanted)}))
    return PeerVenv(path, python, wanted, created=True)
