"""What every section of the pipeline spec shares: closed, immutable models and safe names."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]
"""A name the spec gives (field, aggregate, entity key, model): a Python-style identifier."""


class ClosedSpec(BaseModel):
    """A section of the spec: unknown keys are errors and the values cannot change."""

    model_config = ConfigDict(extra="forbid", frozen=True)
