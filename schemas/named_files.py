"""Files that can be named by a built-in name or given as a path (specs, timelines)."""

from __future__ import annotations

from pathlib import Path


def builtin_names(folder: Path) -> list[str]:
    """The built-in names in ``folder``: the stems of its ``*.toml`` files."""
    return sorted(path.stem for path in folder.glob("*.toml"))


def find_named_file(name_or_path: str, folder: Path) -> Path | None:
    """``folder/<name>.toml`` when it exists, else ``name_or_path`` when it is a file, else None."""
    builtin = folder / f"{name_or_path}.toml"
    if builtin.is_file():
        return builtin
    path = Path(name_or_path)
    return path if path.is_file() else None
