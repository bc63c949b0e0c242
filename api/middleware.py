"""``X-Request-ID`` / ``X-Correlation-ID`` on every response (transport_and_format.asciidoc,
"Unique message IDs"): echoed from the request when present, generated (UUID4) otherwise."""

from __future__ import annotations

import uuid

_MAX_ID_LEN = 128


def _clean(value: bytes | None) -> str | None:
    if not value:
        return None
    text = value.decode("latin-1").strip()
    if not text or len(text) > _MAX_ID_LEN or not all(0x21 <= ord(c) <= 0x7E for c in text):
        return None
    return text


class RequestIdMiddleware:
    """Pure ASGI middleware (cheaper than ``BaseHTTPMiddleware`` on every request)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = correlation_id = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                request_id = _clean(value)
            elif name == b"x-correlation-id":
                correlation_id = _clean(value)
        request_id = request_id or str(uuid.uuid4())
        correlation_id = correlation_id or str(uuid.uuid4())
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["correlation_id"] = correlation_id

        async def send_with_ids(message):
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", [])
                    if k.lower() not in (b"x-request-id", b"x-correlation-id")
                ]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                headers.append((b"x-correlation-id", correlation_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_ids)
