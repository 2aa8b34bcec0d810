"""Reading a running service from outside: its Prometheus ``/metrics``, its memory, the load.

>>> page = '# HELP x\\nstreamml_x_total{topic="a"} 2.0\\nstreamml_x_total{topic="b"} 3\\n'
>>> samples = parse_samples(page)
>>> total(samples, "streamml_x_total"), by_label(samples, "streamml_x_total", "topic")
(5.0, {'a': 2.0, 'b': 3.0})
"""

from __future__ import annotations

import os
import re
import urllib.request
from pathlib import Path

_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse_samples(text: str) -> dict[str, float]:
    """Every sample of a Prometheus text page: ``name{labels}`` -> value (comments skipped)."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is not None:
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


def scrape(port: int, timeout: float = 5.0) -> dict[str, float]:
    """Every sample of ``http://127.0.0.1:<port>/metrics``; OSError when nothing answers."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        text: str = response.read().decode()
    return parse_samples(text)


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    """Sum of metric ``name`` over the samples whose labels include ``labels``."""
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    found = 0.0
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        if base == name and all(w in rest for w in wanted):
            found += value
    return found


def by_label(samples: dict[str, float], name: str, label: str) -> dict[str, float]:
    """Metric ``name`` summed per value of ``label``."""
    found: dict[str, float] = {}
    pattern = re.compile(label + r'="([^"]*)"')
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        match = pattern.search(rest)
        if base == name and match is not None:
            found[match.group(1)] = found.get(match.group(1), 0.0) + value
    return found


def rss_bytes(pid: int) -> int | None:
    """Resident memory of process ``pid`` (``VmRSS``), or None when it is gone or unreadable."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


def cpu_seconds(pid: int) -> float | None:
    """CPU time process ``pid`` has used so far (user + system), or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (name) ": state is field 3
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded to 0.01."""
    return [round(x, 2) for x in os.getloadavg()]


def broker_pid(pid_file: Path) -> int | None:
    """The local broker's pid from its pid file, when the file names a live process."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None
