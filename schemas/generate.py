"""Writes the JSON Schema of every contract into ``schemas/jsonschema/``.

Run ``python -m schemas.generate`` after changing a model; a test fails while the committed files
differ from the models.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from schemas.base import Contract
from schemas.dead_letters import DeadLetterHeaders
from schemas.topics import TOPICS

SCHEMA_DIR = Path(__file__).parent / "jsonschema"


def contracts() -> dict[str, type[Contract]]:
    """File stem -> contract, for every topic value plus the dead-letter headers."""
    documents: dict[str, type[Contract]] = {
        spec.name: spec.value_model for spec in TOPICS if spec.value_model is not None
    }
    documents["dead-letters.headers"] = DeadLetterHeaders
    return documents


def render(model: type[Contract]) -> str:
    """The JSON Schema text for ``model``, stable across runs."""
    return json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"


def stale_files() -> list[Path]:
    """Schema files that are missing or differ from the models."""
    return [
        SCHEMA_DIR / f"{stem}.json"
        for stem, model in contracts().items()
        if not (SCHEMA_DIR / f"{stem}.json").exists()
        or (SCHEMA_DIR / f"{stem}.json").read_text() != render(model)
    ]


def main(argv: list[str] | None = None) -> int:
    """Regenerate every schema file (``--check``: only report stale ones, exit 1 if any)."""
    check = "--check" in (sys.argv[1:] if argv is None else argv)
    stale = stale_files()
    if check:
        for path in stale:
            print(f"stale: {path} (run: python -m schemas.generate)")
        return 1 if stale else 0
    SCHEMA_DIR.mkdir(exist_ok=True)
    for path in stale:
        path.write_text(render(contracts()[path.stem]))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
