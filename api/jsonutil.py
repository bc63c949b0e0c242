"""Exact JSON for money: Decimals are written as JSON numbers with every digit they carry.

The standard library (and FastAPI's ``jsonable_encoder``) turn ``Decimal`` into ``float`` on the
way out, which is how a cent gets lost. Every API response with money goes through
:func:`dumps` instead. :class:`RawJSON` splices JSON text that is already exact (a CDR as it
is stored) into a response without parsing it again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from starlette.responses import Response

_encode_str = json.JSONEncoder(ensure_ascii=False).encode


class RawJSON(str):
    """A string that already is valid JSON; emitted verbatim."""


def format_decimal(value: Decimal) -> str:
    """A finite Decimal as a JSON number literal without exponent: ``Decimal('1E+2')`` -> ``100``."""
    if not value.is_finite():
        raise ValueError(f"{value} has no JSON representation")
    text = format(value, "f")
    return "0" if text == "-0" else text


def format_datetime(value: datetime) -> str:
    """UTC timestamp in OCPI's RFC 3339 form with a ``Z`` (naive values are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    text = value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def _write(obj: Any, out: Callable[[str], None]) -> None:
    if obj is None:
        out("null")
    elif obj is True:
        out("true")
    elif obj is False:
        out("false")
    elif isinstance(obj, RawJSON):
        out(obj)
    elif isinstance(obj, str):
        out(_encode_str(obj))
    elif isinstance(obj, Decimal):
        out(format_decimal(obj))
    elif isinstance(obj, int):
        out(int.__repr__(obj))
    elif isinstance(obj, float):
        out(json.dumps(obj))
    elif isinstance(obj, datetime):
        out('"' + format_datetime(obj) + '"')
    elif isinstance(obj, date):
        out('"' + obj.isoformat() + '"')
    elif isinstance(obj, BaseModel):
        _write(obj.model_dump(mode="python", exclude_none=True), out)
    elif isinstance(obj, Mapping):
        out("{")
        first = True
        for key, value in obj.items():
            if not first:
                out(",")
            first = False
            out(_encode_str(str(key)))
            out(":")
            _write(value, out)
        out("}")
    elif isinstance(obj, (list, tuple)):
        out("[")
        for i, value in enumerate(obj):
            if i:
                out(",")
            _write(value, out)
        out("]")
    elif hasattr(obj, "value") and isinstance(getattr(obj, "value"), (str, int)):  # Enum
        _write(obj.value, out)
    else:
        raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


def dumps(obj: Any) -> str:
    """``obj`` as compact JSON text, Decimals exact."""
    parts: list[str] = []
    _write(obj, parts.append)
    return "".join(parts)


def loads(text: str | bytes) -> Any:
    """JSON text to Python with every number that has a fraction or exponent as Decimal."""
    return json.loads(text, parse_float=Decimal)


class ExactJSONResponse(Response):
    """A JSON response rendered with :func:`dumps`."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")
