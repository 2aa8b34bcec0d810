"""JSON wire format: orjson in, pydantic-validated contracts out.

>>> from schemas.events import Label
>>> label = decode(Label, b'{"event_id": "e-1", "label_time": "2026-01-01T00:00:00Z", "label": 1}')
>>> decode(Label, encode(label)) == label
True
"""

from __future__ import annotations

from typing import TypeVar

import orjson
from pydantic import ValidationError

from schemas.base import Contract

ContractT = TypeVar("ContractT", bound=Contract)


class ContractError(ValueError):
    """Raised when bytes are not a valid payload; ``reason_code`` says which way they failed."""

    def __init__(self, reason_code: str, reason: str) -> None:
        super().__init__(reason)
        self.reason_code = reason_code
        self.reason = reason


def encode(payload: Contract) -> bytes:
    """Serialise a contract to compact JSON bytes (UTC timestamps in RFC 3339)."""
    return orjson.dumps(payload.model_dump(mode="json"))


def encode_plain(payload: Contract) -> bytes:
    """The bytes :func:`encode` gives, without pydantic's serialiser: for hot paths.

    Only for contracts whose fields are JSON scalars, lists and str-keyed dicts of them, and
    aware datetimes (no nested models, enums, or other types): orjson writes their attributes as
    they are, in field order, with datetimes in RFC 3339 and UTC as ``Z``, which is what
    :func:`encode` writes for such a contract (``tests/unit/test_codec.py`` pins the equality).
    The payload must have been validated when it was built: nothing is checked here.
    """
    return orjson.dumps(payload.__dict__, option=orjson.OPT_UTC_Z)


def decode(model: type[ContractT], raw: bytes | None) -> ContractT:
    """Parse and validate ``raw`` as ``model``.

    Raises :class:`ContractError` with ``reason_code`` ``malformed_json`` when the bytes are not a
    JSON object and ``schema_invalid`` when the object breaks the contract.
    """
    if raw is None:
        raise ContractError("malformed_json", "message has no value (null)")
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ContractError("malformed_json", f"not valid JSON: {error}") from error
    if not isinstance(document, dict):
        kind = type(document).__name__
        raise ContractError("malformed_json", f"expected a JSON object, got {kind}")
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise ContractError("schema_invalid", _summarise(error)) from error


def _summarise(error: ValidationError, limit: int = 5) -> str:
    parts = []
    for detail in error.errors()[:limit]:
        location = ".".join(str(part) for part in detail["loc"]) or "<root>"
        parts.append(f"{location}: {detail['msg']}")
    more = error.error_count() - limit
    if more > 0:
        parts.append(f"... and {more} more")
    return "; ".join(parts)
