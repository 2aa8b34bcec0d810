"""Resolves Apache Kafka's jars from Maven Central with the ``pom.xml`` beside this module."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

KAFKA_VERSION = "4.1.1"
POM = Path(__file__).with_name("pom.xml")
_MARKER = ".complete"


class FetchError(RuntimeError):
    """Maven is missing or could not resolve the broker."""


def fetch_kafka(cache_dir: Path, version: str = KAFKA_VERSION) -> Path:
    """Return a folder holding the broker's classpath for ``version``, fetching it if needed.

    The folder is ``<cache_dir>/kafka-<version>/libs``; a marker file makes a finished fetch
    reusable and an interrupted one start over.
    """
    libs = cache_dir / f"kafka-{version}" / "libs"
    if (libs / _MARKER).exists():
        return libs
    maven = shutil.which("mvn")
    if maven is None:
        raise FetchError("Maven ('mvn') is needed to fetch Kafka from Maven Central; install it")
    if libs.exists():
        shutil.rmtree(libs)
    libs.mkdir(parents=True)
    command = [
        maven, "-q", "-B", "-f", str(POM),
        f"-Dkafka.version={version}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs.resolve()}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise FetchError(
            f"mvn failed ({result.returncode}) fetching Kafka {version}:\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    if not any(libs.glob(f"kafka_2.13-{version}.jar")):
        raise FetchError(f"Maven finished but kafka_2.13-{version}.jar is not in {libs}")
    (libs / _MARKER).write_text(version)
    return libs
