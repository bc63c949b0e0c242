"""What the central system answers to each CALL a charge point sends, per OCPP version.

Only what billing needs is answered (issue 7): BootNotification, Heartbeat,
StatusNotification, Authorize, StartTransaction / StopTransaction / MeterValues (1.6),
TransactionEvent / MeterValues (2.0.1, 2.1), plus a few notifications chargers send on
their own whose answer is empty, so chargers do not see errors for routine traffic.
Any other action that the version defines is answered ``NotSupported`` by the caller.

Identity tokens are accepted: authorisation of drivers is the eMSP's business and not
what this gateway decides; the CDR carries the token for billing. Pure: the OCPP 1.6
transaction id is handed in by the caller (allocated in gateway/registry.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


@dataclass(frozen=True)
class AnswerContext:
    now: datetime
    heartbeat_interval_s: int
    #: Only set for an OCPP 1.6 StartTransaction (OCPP 1.6 section 6.46).
    transaction_id: int | None = None


def ocpp_datetime(moment: datetime) -> str:
    """UTC timestamp in the RFC 3339 form OCPP uses, millisecond precision, ``Z`` suffix."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


Answer = Callable[[dict[str, Any], AnswerContext], dict[str, Any]]

_ACCEPTED_16 = {"status": "Accepted"}


def _boot(payload: dict[str, Any], ctx: AnswerContext) -> dict[str, Any]:
    # 1.6 names the interval "interval"; 2.x too (BootNotificationResponse.interval).
    return {"status": "Accepted", "currentTime": ocpp_datetime(ctx.now), "interval": ctx.heartbeat_interval_s}


def _heartbeat(payload: dict[str, Any], ctx: AnswerContext) -> dict[str, Any]:
    return {"currentTime": ocpp_datetime(ctx.now)}


def _empty(payload: dict[str, Any], ctx: AnswerContext) -> dict[str, Any]:
    return {}


def _data_transfer(payload: dict[str, Any], ctx: AnswerContext) -> dict[str, Any]:
    # We implement no vendor extensions (OCPP 1.6 section 6.19 / 2.0.1 P02).
    return {"status": "UnknownVendorId"}


def _authorize_16(payload: dict[str, Any], ctx: AnswerContext) -> dict[str, Any]:
    return {"idTagInfo": dict(_ACCEPTED_16)}


def _start_transaction_16(payload: dict[str, Any], ctx: AnswerContext) -> dict[str, Any]:
    if ctx.transaction_id is None:
        raise ValueError("StartTransaction needs an allocated transaction id")
    return {"transactionId": ctx.transaction_id, "idTagInfo": dict(_ACCEPTED_16)}


def _stop_transaction_16(payload: dict[str, Any], ctx: AnswerContext) -> dict[str, Any]:
    # idTagInfo only "if idTag present" (OCPP 1.6 section 6.50).
    return {"idTagInfo": dict(_ACCEPTED_16)} if "idTag" in payload else {}


def _authorize_2x(payload: dict[str, Any], ctx: AnswerContext) -> dict[str, Any]:
    return {"idTokenInfo": {"status": "Accepted"}}


def _transaction_event_2x(payload: dict[str, Any], ctx: AnswerContext) -> dict[str, Any]:
    # idTokenInfo is returned when the request carries an idToken (OCPP 2.0.1 E01.FR.xx).
    return {"idTokenInfo": {"status": "Accepted"}} if "idToken" in payload else {}


ANSWERS_16: dict[str, Answer] = {
    "BootNotification": _boot,
    "Heartbeat": _heartbeat,
    "StatusNotification": _empty,
    "Authorize": _authorize_16,
    "StartTransaction": _start_transaction_16,
    "StopTransaction": _stop_transaction_16,
    "MeterValues": _empty,
    "DataTransfer": _data_transfer,
    "DiagnosticsStatusNotification": _empty,
    "FirmwareStatusNotification": _empty,
    "SecurityEventNotification": _empty,
    "LogStatusNotification": _empty,
    "SignedFirmwareStatusNotification": _empty,
}

ANSWERS_2X: dict[str, Answer] = {
    "BootNotification": _boot,
    "Heartbeat": _heartbeat,
    "StatusNotification": _empty,
    "Authorize": _authorize_2x,
    "TransactionEvent": _transaction_event_2x,
    "MeterValues": _empty,
    "DataTransfer": _data_transfer,
    "FirmwareStatusNotification": _empty,
    "SecurityEventNotification": _empty,
    "LogStatusNotification": _empty,
    "NotifyEvent": _empty,
    "NotifyReport": _empty,
}


def answers_for(ocpp_version: str) -> dict[str, Answer]:
    return ANSWERS_16 if ocpp_version == "1.6" else ANSWERS_2X


def needs_transaction_id(ocpp_version: str, action: str) -> bool:
    """OCPP 1.6 StartTransaction is the one answer that needs a central-system-assigned id."""
    return ocpp_version == "1.6" and action == "StartTransaction"
