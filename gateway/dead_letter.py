"""The record the gateway writes to ``ocpp-events-dlq`` for a frame it refused.

Same shape as the pipeline's dead letters (streams/topics.py): the record value is the
**original bytes** exactly as received (a text frame's UTF-8 bytes, a binary frame's
bytes), the key is the charge point id, and the context travels in headers:

=================  ================================================================
header             value
=================  ================================================================
reason             why it was refused (field and rule), e.g. ``StartTransaction: ...``
source             ``gateway``
error-code         the CALLERROR errorCode the charge point got (``-``: not answered,
                   e.g. an unsolicited CALLRESULT)
charge-point-id    from the connection URL (authenticated)
ocpp-version       negotiated subprotocol: ``1.6``, ``2.0.1`` or ``2.1``
received-at        UTC, ISO 8601
message-id         when it could be read from the frame
action             when it could be read from the frame
=================  ================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass(frozen=True)
class GatewayDeadLetter:
    charge_point_id: str
    ocpp_version: str
    received_at: datetime
    error_code: str
    reason: str
    raw: bytes
    message_id: str | None = None
    action: str | None = None

    @staticmethod
    def frame_bytes(frame: str | bytes) -> bytes:
        return frame.encode("utf-8") if isinstance(frame, str) else bytes(frame)

    def kafka_key(self) -> bytes:
        return self.charge_point_id.encode()

    def kafka_value(self) -> bytes:
        return self.raw

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        headers = [
            ("reason", self.reason.encode()),
            ("source", b"gateway"),
            ("error-code", self.error_code.encode()),
            ("charge-point-id", self.charge_point_id.encode()),
            ("ocpp-version", self.ocpp_version.encode()),
            ("received-at", self.received_at.astimezone(timezone.utc).isoformat().encode()),
        ]
        if self.message_id is not None:
            headers.append(("message-id", self.message_id.encode()))
        if self.action is not None:
            headers.append(("action", self.action.encode()))
        return headers

    @classmethod
    def from_kafka(cls, value: bytes, headers: list[tuple[str, bytes]] | tuple) -> "GatewayDeadLetter":
        h = {k: v.decode() for k, v in headers}
        return cls(
            charge_point_id=h["charge-point-id"],
            ocpp_version=h["ocpp-version"],
            received_at=datetime.fromisoformat(h["received-at"]),
            error_code=h["error-code"],
            reason=h["reason"],
            raw=value,
            message_id=h.get("message-id"),
            action=h.get("action"),
        )
