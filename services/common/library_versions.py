"""The library versions a pickled state depends on, recorded with it and checked on restore."""

from __future__ import annotations

import functools
import importlib.metadata
import platform
from collections.abc import Mapping


def installed_versions(state_format: str) -> dict[str, str]:
    """River's and Python's versions here, with the writer's own ``state_format``."""
    return {**dict(_installed()), "state_format": state_format}


@functools.cache
def _installed() -> tuple[tuple[str, str], ...]:
    return (
        ("river", importlib.metadata.version("river")),
        ("python", ".".join(platform.python_version_tuple()[:2])),
    )


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def incompatibilities(recorded: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    """What differs between the versions a state was written with and ``current``: River and
    Python by major.minor, the state format exactly (empty: the state can be loaded)."""
    return [
        f"{name} {recorded.get(name, '?')} (snapshot) vs {current[name]} (here)"
        for name in ("river", "python", "state_format")
        if _major_minor(recorded.get(name, "")) != _major_minor(current[name])
    ]
