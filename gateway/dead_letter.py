"""The record the gateway writes to ``ocpp-events-dlq`` for a frame it refused.

Everything that arrived is kept: the original frame (text as received, or base64 for a
binary frame that is not UTF-8), who sent it, when, the CALLERROR we answered and why.
Key = charge point id, like ``ocpp-events``.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator


class GatewayDeadLetter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Literal["gateway"] = "gateway"
    charge_point_id: str
    ocpp_version: Literal["1.6", "2.0.1", "2.1"]
    received_at: datetime
    #: The message id when it could be read from the frame, else None.
    message_id: str | None = None
    action: str | None = None
    #: The errorCode of the CALLERROR the charge point got (e.g. ``TypeConstraintViolation``).
    error_code: str
    reason: str
    raw: str
    raw_encoding: Literal["utf-8", "base64"] = "utf-8"

    @field_validator("received_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("received_at must carry a time zone offset")
        return value.astimezone(timezone.utc)

    @staticmethod
    def encode_raw(raw: str | bytes) -> tuple[str, Literal["utf-8", "base64"]]:
        if isinstance(raw, str):
            return raw, "utf-8"
        try:
            return bytes(raw).decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            return base64.b64encode(bytes(raw)).decode(), "base64"

    def raw_bytes(self) -> bytes:
        return base64.b64decode(self.raw) if self.raw_encoding == "base64" else self.raw.encode()

    def kafka_key(self) -> bytes:
        return self.charge_point_id.encode()

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> "GatewayDeadLetter":
        return cls.model_validate_json(raw)
