"""Base class shared by every topic payload, and the timestamp type they use.

``AwareDatetime`` is pydantic's own: a timestamp with a timezone, naive ones rejected at the
boundary ("Input should have timezone info"), checked in pydantic's compiled core (every
message on the hot path carries one to three timestamps).
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict

__all__ = ["AwareDatetime", "Contract"]


class Contract(BaseModel):
    """A versioned, immutable payload that rejects fields it does not know."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
