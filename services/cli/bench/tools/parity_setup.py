"""The fixed setup of ``streamml bench parity``: the data, the two models, the spec written for
the run, and how River's label delay maps onto ``replay --label-delay``."""

from __future__ import annotations

import csv
from pathlib import Path

from schemas.spec import load_spec

REPO = Path(__file__).resolve().parents[4]
DATA = REPO / "data" / "elec2.csv"
FEATURES = ("period", "nswprice", "nswdemand", "vicprice", "vicdemand", "transfer")
LABEL = "class"
SEED = 42
CHAMPION = "logreg"
CHALLENGER = "hat"
MODELS = (CHAMPION, CHALLENGER)
SENTINEL = "parity-sentinel"
MODELS_TOML = f"""
# Written by streamml bench parity: elec2.toml with both models and no promotion.
[models.champion]
name = "{CHAMPION}"
estimator = "linear_model.LogisticRegression"
scale = true

[[models.challengers]]
name = "{CHALLENGER}"
estimator = "tree.HoeffdingAdaptiveTreeClassifier"
params = {{ seed = {SEED} }}

[models.promotion]
min_labels = 10000000
"""

Row = tuple[dict[str, float], bool]


def label_delay_for(river_delay: int) -> int:
    """The ``replay --label-delay`` that learns like River's ``delay=river_delay``."""
    return max(river_delay - 1, 0)


def read_elec2(path: Path, limit: int | None) -> list[Row]:
    """The first ``limit`` rows (all when None): six floats and the class as a bool."""
    rows: list[Row] = []
    with path.open(newline="", encoding="utf-8-sig") as file:
        for values in csv.DictReader(file):
            if limit is not None and len(rows) >= limit:
                break
            rows.append(({name: float(values[name]) for name in FEATURES},
                         bool(int(values[LABEL]))))
    return rows


def event_id(index: int) -> str:
    """The replay's event id of row ``index`` (0-based): ``elec2-<1-based row number>``."""
    return f"elec2-{index + 1}"


def write_spec(directory: Path) -> Path:
    """elec2.toml with its models replaced by both models and a promotion that never fires."""
    builtin = load_spec("elec2")
    kept: list[str] = []
    skipping = False
    for line in (REPO / "schemas" / "specs" / "elec2.toml").read_text().splitlines():
        if line.strip().startswith("[models"):
            skipping = True
            continue
        if skipping and (line.startswith("[") or line.startswith("#")):
            skipping = False
        if not skipping:
            kept.append(line)
    path = directory / "elec2_parity.toml"
    path.write_text("\n".join(kept) + "\n" + MODELS_TOML)
    spec = load_spec(str(path))
    if spec.model_dump(exclude={"models"}) != builtin.model_dump(exclude={"models"}):
        raise RuntimeError(f"{path} differs from elec2.toml outside [models]")
    return path
