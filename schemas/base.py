"""Base class shared by every topic payload."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


def _require_timezone(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a timezone (e.g. '2026-01-01T00:00:00Z')")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_require_timezone)]
"""A timestamp with a timezone; naive timestamps are rejected at the boundary."""


class Contract(BaseModel):
    """A versioned, immutable payload that rejects fields it does not know."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
