"""The OCPP-J WebSocket server: one connection per charge point at ``/ocpp/{charge_point_id}``.

Handshake (OCPP-J 1.6 section 3, OCPP 2.0.1 Part 4 section 3, security profile 1):

* the path must be ``/ocpp/{id}`` (404 otherwise);
* HTTP Basic auth with user name = charge point id and the registered password
  (401 with ``WWW-Authenticate`` otherwise; unknown and disabled charge points too);
* the subprotocol is one of ``ocpp2.1``, ``ocpp2.0.1``, ``ocpp1.6``; when the charger
  offers several we take the newest; none of them -> 400.

Each frame of a connection is handled to the end before the next one is read, so one
charger's messages reach ``ocpp-events`` in the order it sent them. A CALL is validated
against its OCPP schema, answered, and **the envelope (with the answer) is published and
acknowledged by Kafka before the answer is sent**. A frame that cannot be accepted gets
the CALLERROR OCPP-J defines and is dead-lettered with its original bytes; the connection
stays open. A new connection for a charge point replaces its old one.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from gateway.answers import AnswerContext, answers_for, needs_transaction_id
from gateway.auth import parse_basic_authorization, verify_password
from gateway.dead_letter import GatewayDeadLetter
from gateway.event_log import EventLog, PublishFailed
from gateway.framing import (
    Call,
    CallResult,
    ErrorKind,
    FrameError,
    call_error_frame,
    call_result_frame,
    error_code,
    parse_frame,
)
from gateway.validation import check_call
from schemas.envelope import EventEnvelope

log = logging.getLogger(__name__)

#: Newest first: the server picks the first of its list the charger offers.
SUBPROTOCOLS = ("ocpp2.1", "ocpp2.0.1", "ocpp1.6")
VERSION_BY_SUBPROTOCOL = {"ocpp1.6": "1.6", "ocpp2.0.1": "2.0.1", "ocpp2.1": "2.1"}
_PATH = re.compile(r"^/ocpp/([^/?#]+)/?$")
MAX_CHARGE_POINT_ID_LENGTH = 255
#: Recent StartTransaction answers remembered for retries (per process, not persisted).
START_ANSWERS_KEPT = 100_000


def charge_point_id_from_path(path: str) -> str | None:
    """``/ocpp/CP-1`` -> ``CP-1`` (percent-decoded); None for any other path."""
    match = _PATH.match(path.split("?", 1)[0])
    if not match:
        return None
    cp_id = unquote(match.group(1))
    if not cp_id or len(cp_id) > MAX_CHARGE_POINT_ID_LENGTH or "/" in cp_id:
        return None
    return cp_id


@dataclass
class GatewayStats:
    connections_open: int = 0
    connections_total: int = 0
    handshakes_refused: int = 0
    calls_accepted: int = 0
    call_errors: int = 0
    dead_lettered: int = 0
    publish_failures: int = 0
    unsolicited_answers: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class Gateway:
    """The central system's OCPP-J edge. ``password_lookup`` and ``next_transaction_id``
    are the registry's (blocking lookups run in a worker thread)."""

    def __init__(
        self,
        event_log: EventLog,
        password_lookup: Callable[[str], str | None],
        next_transaction_id: Callable[[], Any],
        *,
        heartbeat_interval_s: int = 300,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.event_log = event_log
        self._password_lookup = password_lookup
        self._next_transaction_id = next_transaction_id
        self.heartbeat_interval_s = heartbeat_interval_s
        self._clock = clock
        self.stats = GatewayStats()
        self._connections: dict[str, ServerConnection] = {}
        # Successful checks, so a reconnect does not pay scrypt again: id -> (stored hash,
        # HMAC of the password under a per-process key). A changed stored hash invalidates.
        self._auth_key = os.urandom(32)
        self._verified: dict[str, tuple[str, bytes]] = {}
        # OCPP 1.6 StartTransaction answers by (charge point, message id): a charger that
        # re-sends a StartTransaction whose answer it lost gets the same transactionId
        # again, matching the first record, which is the one the pipeline keeps.
        self._start_answers: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()

    # -- handshake --------------------------------------------------------------------
    def _refuse(self, connection: ServerConnection, status: int, reason: str) -> Response:
        self.stats.handshakes_refused += 1
        log.info("refused %s: %s", connection.remote_address, reason)
        response = connection.respond(status, reason + "\n")
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Basic realm="chargeledger", charset="UTF-8"'
        return response

    async def _password_ok(self, cp_id: str, password: str) -> bool:
        stored = await asyncio.to_thread(self._password_lookup, cp_id)
        if stored is None:
            return False
        tag = hmac.new(self._auth_key, password.encode(), hashlib.sha256).digest()
        cached = self._verified.get(cp_id)
        if cached is not None and cached[0] == stored and hmac.compare_digest(cached[1], tag):
            return True
        if not await asyncio.to_thread(verify_password, password, stored):
            return False
        self._verified[cp_id] = (stored, tag)
        return True

    async def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        cp_id = charge_point_id_from_path(request.path)
        if cp_id is None:
            return self._refuse(connection, 404, "not found: connect to /ocpp/{charge_point_id}")
        credentials = parse_basic_authorization(request.headers.get("Authorization"))
        if credentials is None:
            return self._refuse(connection, 401, f"{cp_id}: HTTP Basic authentication required")
        if credentials.username != cp_id:
            return self._refuse(connection, 401, f"{cp_id}: user name must be the charge point id")
        try:
            ok = await self._password_ok(cp_id, credentials.password)
        except Exception:  # database down: refuse, never crash
            log.exception("credential lookup failed for %s", cp_id)
            return self._refuse(connection, 503, f"{cp_id}: cannot check credentials now")
        if not ok:
            return self._refuse(connection, 401, f"{cp_id}: unknown charge point or wrong password")
        connection.charge_point_id = cp_id  # type: ignore[attr-defined]
        return None

    # -- connection -------------------------------------------------------------------
    async def handler(self, connection: ServerConnection) -> None:
        cp_id: str = connection.charge_point_id  # type: ignore[attr-defined]
        version = VERSION_BY_SUBPROTOCOL[connection.subprotocol]
        previous = self._connections.get(cp_id)
        self._connections[cp_id] = connection
        if previous is not None:
            log.info("%s reconnected; closing its previous connection", cp_id)
            asyncio.ensure_future(previous.close(1001, "replaced by a newer connection"))
        self.stats.connections_open += 1
        self.stats.connections_total += 1
        try:
            async for raw in connection:
                reply = await self.handle_frame(cp_id, version, raw)
                if reply is not None:
                    await connection.send(reply)
        except ConnectionClosed:
            pass
        finally:
            self.stats.connections_open -= 1
            if self._connections.get(cp_id) is connection:
                del self._connections[cp_id]

    def connected(self) -> list[str]:
        return list(self._connections)

    # -- frames -----------------------------------------------------------------------
    async def handle_frame(self, cp_id: str, version: str, raw: str | bytes) -> str | None:
        """Process one inbound frame; return the frame to send back (None: nothing)."""
        received_at = self._clock()
        frame = None
        try:
            frame = parse_frame(raw)
            if not isinstance(frame, Call):
                # An answer, but this gateway sends no CALLs: nothing waits for it. OCPP-J
                # never answers a CALLRESULT / CALLERROR, so it is only dead-lettered.
                self.stats.unsolicited_answers += 1
                kind = "CALLRESULT" if isinstance(frame, CallResult) else "CALLERROR"
                await self._dead_letter(GatewayDeadLetter(
                    charge_point_id=cp_id, ocpp_version=version, received_at=received_at, error_code="-",
                    reason=f"unsolicited {kind}: the central system sent no CALL with this message id",
                    raw=GatewayDeadLetter.frame_bytes(raw), message_id=frame.message_id))
                return None
            check_call(version, frame.message_id, frame.action, frame.payload)
            answer = answers_for(version).get(frame.action)
            if answer is None:
                raise FrameError(
                    ErrorKind.NOT_SUPPORTED,
                    f"{frame.action} is not accepted from a charge point by this central system",
                    frame.message_id,
                    frame.action,
                )
        except FrameError as refused:
            return await self._refuse_frame(cp_id, version, raw, received_at, refused)
        except Exception as exc:  # a bug in a check must not drop the frame or the connection
            log.exception("%s: checking a frame failed", cp_id)
            message_id = frame.message_id if isinstance(frame, Call) else "-1"
            refused = FrameError(ErrorKind.INTERNAL, f"internal error while checking the message: {exc!r}"[:255],
                                 message_id, getattr(frame, "action", None))
            return await self._refuse_frame(cp_id, version, raw, received_at, refused)
        return await self._accept(cp_id, version, frame, answer, received_at)

    async def _accept(self, cp_id: str, version: str, call: Call, answer, received_at: datetime) -> str:
        try:
            if needs_transaction_id(version, call.action):
                response = await self._start_transaction_answer(cp_id, call, answer, received_at)
            else:
                response = answer(call.payload, AnswerContext(received_at, self.heartbeat_interval_s))
            envelope = EventEnvelope(
                charge_point_id=cp_id,
                ocpp_version=version,
                action=call.action,
                message_id=call.message_id,
                received_at=received_at,
                payload=call.payload,
                response=response,
            )
            await self.event_log.publish_event(envelope)
        except PublishFailed as exc:
            self.stats.publish_failures += 1
            self.stats.call_errors += 1
            log.error("%s %s %s not acknowledged by the event log: %s", cp_id, call.action, call.message_id, exc)
            return call_error_frame(call.message_id, error_code(ErrorKind.INTERNAL, version),
                                    "message not stored, retry later")
        except Exception:
            self.stats.call_errors += 1
            log.exception("%s %s %s failed", cp_id, call.action, call.message_id)
            return call_error_frame(call.message_id, error_code(ErrorKind.INTERNAL, version),
                                    "internal error, retry later")
        self.stats.calls_accepted += 1
        return call_result_frame(call.message_id, response)

    async def _start_transaction_answer(self, cp_id: str, call: Call, answer, received_at: datetime) -> dict[str, Any]:
        key = (cp_id, call.message_id)
        known = self._start_answers.get(key)
        if known is not None:
            self._start_answers.move_to_end(key)
            return known
        transaction_id = await self._next_transaction_id()
        response = answer(call.payload, AnswerContext(received_at, self.heartbeat_interval_s, transaction_id))
        self._start_answers[key] = response
        if len(self._start_answers) > START_ANSWERS_KEPT:
            self._start_answers.popitem(last=False)
        return response

    async def _refuse_frame(self, cp_id: str, version: str, raw: str | bytes, received_at: datetime,
                            refused: FrameError) -> str:
        code = error_code(refused.kind, version)
        record = GatewayDeadLetter(
            charge_point_id=cp_id,
            ocpp_version=version,
            received_at=received_at,
            error_code=code,
            reason=refused.reason,
            raw=GatewayDeadLetter.frame_bytes(raw),
            message_id=None if refused.message_id == "-1" else refused.message_id,
            action=refused.action,
        )
        self.stats.call_errors += 1
        await self._dead_letter(record)
        return call_error_frame(refused.message_id, code, refused.reason)

    async def _dead_letter(self, record: GatewayDeadLetter) -> None:
        try:
            await self.event_log.publish_dead_letter(record)
            self.stats.dead_lettered += 1
        except PublishFailed as exc:
            self.stats.publish_failures += 1
            log.error("%s: dead letter not stored (%s): %s %r", record.charge_point_id, exc, record.reason,
                      record.raw[:500])
        log.info("%s: %s %s", record.charge_point_id, record.error_code, record.reason)

    # -- serving ----------------------------------------------------------------------
    def serve(self, host: str, port: int, **kwargs: Any):
        """The websockets server (an async context manager); ``port=0`` picks a free port."""
        options: dict[str, Any] = dict(
            subprotocols=list(SUBPROTOCOLS),
            process_request=self.process_request,
            compression=None,
            ping_interval=60,
            ping_timeout=60,
            open_timeout=30,
            max_size=2**20,
            backlog=4096,
        )
        options.update(kwargs)
        return serve(self.handler, host, port, **options)
