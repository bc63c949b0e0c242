"""The OCPI JSON writer of schemas/ocpi.py as it was before the field-plan encoder
(main at 46d1fef), kept verbatim as the reference the fast writer must match byte for byte.

Test support only (and benchmarks/cdr_json.py's "before" figure): not used by the code.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import BaseModel

from schemas.ocpi import format_ocpi_datetime


def _decimal_text(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"{value} cannot be written as a JSON number")
    text = format(value, "f")
    return "0" if text in ("-0", "") else text


def _encode(value: Any, out: list[str], indent: str | None, level: int) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, Enum):
        out.append(json.dumps(value.value))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Decimal):
        out.append(_decimal_text(value))
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, float):
        raise TypeError("float in OCPI output: money and energy must be Decimal")
    elif isinstance(value, datetime):
        out.append('"' + format_ocpi_datetime(value) + '"')
    elif isinstance(value, date):
        out.append('"' + value.isoformat() + '"')
    elif isinstance(value, BaseModel):
        _encode(value.model_dump(mode="python", exclude_none=True), out, indent, level)
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        sep, inner, outer = _separators(indent, level)
        out.append("{")
        first = True
        for key, item in value.items():
            if not first:
                out.append(sep)
            first = False
            out.append(inner)
            out.append(json.dumps(str(key.value if isinstance(key, Enum) else key)))
            out.append(": " if indent is not None else ":")
            _encode(item, out, indent, level + 1)
        out.append(outer + "}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        sep, inner, outer = _separators(indent, level)
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(sep)
            out.append(inner)
            _encode(item, out, indent, level + 1)
        out.append(outer + "]")
    else:
        raise TypeError(f"cannot write {type(value).__name__} as OCPI JSON")


_quote = json.encoder.encode_basestring
_quote_ascii = json.encoder.encode_basestring_ascii


def _encode_compact(value: Any, out: list[str]) -> None:
    t = type(value)
    if t is str:
        out.append(_quote(value))
    elif t is dict:
        if not value:
            out.append("{}")
            return
        out.append("{")
        first = True
        for key, item in value.items():
            if first:
                first = False
            else:
                out.append(",")
            out.append(_quote_ascii(key) if type(key) is str else json.dumps(str(key.value if isinstance(key, Enum) else key)))
            out.append(":")
            _encode_compact(item, out)
        out.append("}")
    elif t is list or t is tuple:
        if not value:
            out.append("[]")
            return
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode_compact(item, out)
        out.append("]")
    elif t is Decimal:
        out.append(_decimal_text(value))
    elif value is None:
        out.append("null")
    elif isinstance(value, BaseModel):
        _encode_compact(value.model_dump(mode="python", exclude_none=True), out)
    else:
        _encode(value, out, None, 0)


def _separators(indent: str | None, level: int) -> tuple[str, str, str]:
    if indent is None:
        return ",", "", ""
    return ",", "\n" + indent * (level + 1), "\n" + indent * level


def reference_dumps(value: Any, *, indent: int | None = None) -> str:
    """The old ``schemas.ocpi.ocpi_dumps``."""
    out: list[str] = []
    if indent is None:
        _encode_compact(value, out)
    else:
        _encode(value, out, " " * indent, 0)
    return "".join(out)


def reference_model_dump_json(model: BaseModel, *, indent: int | None = None, exclude_none: bool = True,
                              **kwargs: Any) -> str:
    """The old ``OcpiModel.model_dump_json``."""
    return reference_dumps(model.model_dump(mode="python", exclude_none=exclude_none, **kwargs), indent=indent)
