"""Where the time goes: ``py-spy record`` of running services, and the top frames of a profile.

Profiles are speedscope JSON (open them at speedscope.app or with ``npx speedscope FILE``),
sampled at 100 Hz without pausing the target (``--nonblocking``), by function (``--function``),
only while a thread holds the interpreter lock (``--gil``): a profile holds the moments a
service was running Python, not those it waited on the network (Kafka clients and sockets
release the lock while they wait).

>>> document = {"shared": {"frames": [{"name": "loop", "file": "/x/a.py", "line": 1},
...                                   {"name": "predict", "file": "/x/b.py", "line": 9}]},
...             "profiles": [{"name": "Thread 1", "samples": [[0, 1], [0, 1], [0]],
...                           "weights": [0.01, 0.01, 0.01]}]}
>>> summary = top_frames(document, limit=2)
>>> summary["self"][0]
{'frame': 'predict (x/b.py:9)', 'share': 0.6667}
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

PY_SPY_HINT = "pip install py-spy (into the same virtualenv)"


def py_spy_binary() -> str | None:
    """py-spy next to this interpreter, or on the PATH; None when it is not installed."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.is_file():
        return str(beside)
    return shutil.which("py-spy")


def start_recording(binary: str, pid: int, seconds: float, out: Path,
                    log: Path) -> subprocess.Popen[bytes]:
    """Start ``py-spy record`` of ``pid`` for ``seconds`` into ``out`` (speedscope JSON)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as stream:
        return subprocess.Popen(  # noqa: S603 - py-spy with our own arguments
            [binary, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
             "--rate", "100", "--format", "speedscope", "--output", str(out),
             "--nonblocking", "--function", "--gil"],
            stdout=stream, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def short_file(path: str) -> str:
    """A frame's file without the interpreter's or the virtualenv's prefix."""
    for marker in ("site-packages/", "lib/python3.11/", "lib/python3.12/"):
        if marker in path:
            return path.split(marker, 1)[1]
    parts = Path(path).parts
    if "services" in parts:
        return "/".join(parts[parts.index("services"):])
    return "/".join(parts[-2:])


PROJECT_FOLDERS = ("services/", "schemas/")


def top_frames(document: dict[str, Any], limit: int = 12) -> dict[str, Any]:
    """The functions that took the most samples, as shares of all samples: by self time (the
    innermost frame, any code) and by total time (anywhere on the stack; only the project's own
    functions, under ``services/`` and ``schemas/``, and not those on nearly every stack, the
    entry points); and the share of each thread."""
    frames = document["shared"]["frames"]
    labels = [f"{frame['name']} ({short_file(frame['file'])}:{frame['line']})"
              for frame in frames]
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    samples = 0
    for profile in document["profiles"]:
        for stack in profile["samples"]:
            samples += 1
            threads[profile.get("name", "?")] += 1
            if stack:
                own[labels[stack[-1]]] += 1
            for label in {labels[index] for index in stack}:
                if label.split(" (", 1)[-1].startswith(PROJECT_FOLDERS):
                    anywhere[label] += 1
    if samples == 0:
        return {"samples": 0, "self": [], "total": [], "threads": []}

    def shares(counter: Counter[str], skip_above: float = 1.0) -> list[dict[str, Any]]:
        ranked = [(label, count / samples) for label, count in counter.most_common()
                  if count / samples <= skip_above]
        return [{"frame": label, "share": round(share, 4)} for label, share in ranked[:limit]]

    return {"samples": samples, "self": shares(own), "total": shares(anywhere, 0.97),
            "threads": shares(threads)}


def summarize_file(path: Path, limit: int = 12) -> dict[str, Any]:
    """:func:`top_frames` of a speedscope file py-spy wrote."""
    return top_frames(orjson.loads(path.read_bytes()), limit)
