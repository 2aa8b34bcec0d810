"""``streamml bench <tool>``: benchmarks of one part, and the parity check, next to the
pipeline benchmark. Each tool module has ``main(argv) -> int`` with its own flags
(``streamml bench <tool> --help``) and writes its figures under ``bench/results/``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

TOOLS: dict[str, tuple[str, str]] = {
    "parity": ("parity", "prequential accuracy of the running pipeline against River in "
                         "process on Elec2, event by event"),
    "features": ("features_service", "the features service alone: drain and paced latency"),
    "model": ("model_service", "the model service alone: drain, saturated and paced latency"),
    "model-memory": ("model_memory", "the model service's memory when labels never come"),
    "checkpoint": ("checkpoint", "a full against a delta checkpoint of full stores (no broker)"),
    "scaled": ("scaled", "predictor replicas against one process on the same stream: "
                         "accuracy, staleness, CPU per prediction"),
    "snapshot-restore": ("snapshot_restore", "what a model restore reads after an hour of "
                                             "checkpoints"),
}
"""Tool name -> (module in this package, what it measures)."""


def tool_main(name: str) -> Callable[[Sequence[str] | None], int]:
    """The ``main`` of the tool called ``name`` (a key of :data:`TOOLS`), imported now."""
    module = importlib.import_module(f"{__name__}.{TOOLS[name][0]}")
    main: Callable[[Sequence[str] | None], int] = module.main
    return main


def describe() -> str:
    """One line per tool, for the command's help."""
    return "\n".join(f"  {name:<17} {what}" for name, (_, what) in TOOLS.items())
