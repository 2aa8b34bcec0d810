"""The pipeline spec: one TOML file that adapts streamml to a use case.

It declares the event fields (types, valid ranges), the entity keys, the streaming aggregates, the
label and its feedback window, the champion and challenger models and the drift detectors. Load it
with :func:`load_spec`, which accepts a built-in name (``clicks``) or a path, and raises
:class:`SpecError` naming the problem.

The whole spec (:class:`PipelineSpec`), its ``[source]`` and the loading live here; its sections
in :mod:`schemas.spec_features` (fields, aggregates), :mod:`schemas.spec_learning` (label, models,
promotion) and :mod:`schemas.spec_drift` (detectors), on the shared base of
:mod:`schemas.spec_base`. Every name of those is importable from here too.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import Field, ValidationError, model_validator

from schemas.named_files import builtin_names, find_named_file
from schemas.spec_base import ClosedSpec, Identifier
from schemas.spec_drift import CovariateSpec, DetectorSpec, DriftSpec, LabelShiftSpec, ShiftSpec
from schemas.spec_features import (
    NUMERIC_FUNCTIONS,
    WINDOWED_FUNCTIONS,
    AggregateFunction,
    AggregateSpec,
    FieldSpec,
)
from schemas.spec_learning import LabelSpec, ModelSpec, ModelsSpec, PromotionSpec

__all__ = [
    "BUILTIN_DIR",
    "NUMERIC_FUNCTIONS",
    "TIME_FORMATS",
    "WINDOWED_FUNCTIONS",
    "AggregateFunction",
    "AggregateSpec",
    "CovariateSpec",
    "DetectorSpec",
    "DriftSpec",
    "FieldSpec",
    "Identifier",
    "LabelShiftSpec",
    "LabelSpec",
    "ModelSpec",
    "ModelsSpec",
    "PipelineSpec",
    "PromotionSpec",
    "ShiftSpec",
    "SourceSpec",
    "SpecError",
    "builtin_specs",
    "load_spec",
    "resolve_spec_path",
]

BUILTIN_DIR = Path(__file__).parent / "specs"


TIME_FORMATS: tuple[str, ...] = ("iso8601", "epoch_seconds", "epoch_millis")
"""The named ``time_format`` values; any other must be a ``strptime`` pattern (it has a ``%``)."""


class SourceSpec(ClosedSpec):
    """How the rows of a replayed file (CSV or JSONL) become events and labels.

    ``label_column`` holds the label; every column that is one of the spec's fields becomes an
    event field. ``id_column`` gives the ``event_id`` (default: ``<spec>-<row number>``).
    Entity values come from ``entity_columns`` or the constants in ``entity``.

    ``time_column`` (optional) holds each row's event time, which the event keeps (without it,
    an event's time is the moment it is published). ``time_format`` says how it is written:
    ``iso8601`` (the default), ``epoch_seconds``, ``epoch_millis``, or a ``strptime`` pattern
    such as ``%d/%m/%Y %H:%M``; a time without a UTC offset is taken as UTC.
    ``label_time_column`` (optional, needs ``time_column``, same format) holds when each label
    became known; it may not be earlier than the row's event time.
    """

    label_column: str
    id_column: str | None = None
    entity: dict[Identifier, str] = Field(default_factory=dict)
    entity_columns: dict[Identifier, str] = Field(default_factory=dict)
    time_column: str | None = Field(default=None, min_length=1)
    time_format: str = "iso8601"
    label_time_column: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _times_fit(self) -> SourceSpec:
        if self.time_format not in TIME_FORMATS and "%" not in self.time_format:
            raise ValueError(
                f"time_format must be one of {list(TIME_FORMATS)} or a strptime pattern "
                f"(e.g. '%Y-%m-%d %H:%M:%S'), got {self.time_format!r}"
            )
        if self.time_column is None:
            if self.label_time_column is not None:
                raise ValueError("label_time_column needs a time_column for the event times")
            if "time_format" in self.model_fields_set:
                raise ValueError("time_format is set but there is no time_column")
        return self


class PipelineSpec(ClosedSpec):
    """A whole use case. Entity keys name the event's ``entity`` map; the first is the partition
    key of the ``events`` topic."""

    name: Identifier
    description: str = ""
    entity_keys: tuple[Identifier, ...] = Field(min_length=1)
    fields: dict[Identifier, FieldSpec] = Field(min_length=1)
    aggregates: tuple[AggregateSpec, ...] = ()
    label: LabelSpec
    models: ModelsSpec
    drift: DriftSpec = Field(default_factory=DriftSpec)
    source: SourceSpec | None = None

    @model_validator(mode="after")
    def _references_resolve(self) -> PipelineSpec:
        names = set(self.fields)
        for aggregate in self.aggregates:
            if aggregate.entity not in self.entity_keys:
                raise ValueError(
                    f"aggregate '{aggregate.name}': entity '{aggregate.entity}' is not one of "
                    f"entity_keys {list(self.entity_keys)}"
                )
            if aggregate.field is not None:
                if aggregate.field not in names:
                    raise ValueError(
                        f"aggregate '{aggregate.name}': unknown field '{aggregate.field}'"
                    )
                if (self.fields[aggregate.field].type == "categorical"
                        and aggregate.function in NUMERIC_FUNCTIONS):
                    raise ValueError(
                        f"aggregate '{aggregate.name}': '{aggregate.function}' of categorical "
                        f"field '{aggregate.field}'"
                    )
            if aggregate.name in names:
                raise ValueError(f"aggregate '{aggregate.name}' has the name of a field")
        if self.source is not None:
            given = set(self.source.entity) | set(self.source.entity_columns)
            if given != set(self.entity_keys):
                raise ValueError(
                    f"source: entity and entity_columns must give exactly the entity keys "
                    f"{list(self.entity_keys)}, got {sorted(given)}"
                )
        if self.models.task == "anomaly" and self.label.type != "binary":
            raise ValueError("models.task = 'anomaly' needs a binary label (1: a confirmed "
                             f"incident), got label.type = '{self.label.type}'")
        segment_by = self.models.segment_by
        if segment_by is not None and segment_by not in self.entity_keys and (
                segment_by not in self.fields or self.fields[segment_by].type != "categorical"):
            raise ValueError(f"models.segment_by = '{segment_by}' must be an entity key "
                             f"{list(self.entity_keys)} or a categorical field")
        model_names = [self.models.champion.name, *(m.name for m in self.models.challengers)]
        if len(set(model_names)) != len(model_names):
            raise ValueError(f"model names must be unique, got {model_names}")
        return self


class SpecError(ValueError):
    """A spec that cannot be used; the message names the file, the place and the problem."""


def builtin_specs() -> list[str]:
    """Names of the specs shipped with streamml."""
    return builtin_names(BUILTIN_DIR)


def resolve_spec_path(name_or_path: str) -> Path:
    """A built-in spec's file, or ``name_or_path`` itself when it is a file."""
    path = find_named_file(name_or_path, BUILTIN_DIR)
    if path is None:
        raise SpecError(
            f"no spec '{name_or_path}': not a file, and the built-in specs are {builtin_specs()}"
        )
    return path


def load_spec(name_or_path: str) -> PipelineSpec:
    """Read and validate a spec; raise :class:`SpecError` with a precise message."""
    path = resolve_spec_path(name_or_path)
    text = path.read_text()
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{path}: not valid TOML: {error}") from error
    try:
        return PipelineSpec.model_validate(document)
    except ValidationError as error:
        problems = []
        for detail in error.errors():
            location = ".".join(str(part) for part in detail["loc"])
            line = _line_of(text, detail["loc"])
            where = f"line {line}, " if line else ""
            problems.append(f"  {where}{location or '<top>'}: {detail['msg']}")
        raise SpecError(f"{path}: invalid spec\n" + "\n".join(problems)) from error


def _line_of(text: str, location: tuple[int | str, ...]) -> int | None:
    """Best-effort line number of the deepest part of ``location`` found in the TOML text.

    Each table header and ``key = value`` line is given its full path (``[[array]]`` headers are
    counted, so ``aggregates.1`` is the second ``[[aggregates]]``); the line whose path is the
    longest prefix of ``location`` wins.
    """
    wanted = [str(part) for part in location]
    best, best_length = None, 0
    table: list[str] = []
    arrays: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("[["):
            name = stripped[2:].split("]]", 1)[0].strip()
            index = arrays.get(name, 0)
            arrays[name] = index + 1
            table = [*_key_path(name), str(index)]
            path = table
        elif stripped.startswith("["):
            table = _key_path(stripped[1:].split("]", 1)[0])
            path = table
        elif "=" in stripped and not stripped.startswith("#"):
            path = [*table, *_key_path(stripped.split("=", 1)[0])]
        else:
            continue
        if best_length < len(path) <= len(wanted) and wanted[: len(path)] == path:
            best, best_length = number, len(path)
    return best


def _key_path(key: str) -> list[str]:
    return [part.strip().strip("\"'") for part in key.split(".")]
