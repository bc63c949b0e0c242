"""Every error the API returns has a reason, in the shape the caller expects.

* ``/ocpi/...``: the OCPI response envelope (transport_and_format.asciidoc, "Response format")
  with an OCPI status code (status_codes.asciidoc): 2000 generic client error, 2001 invalid
  or missing parameters, 3000 generic server error, 3001 unable to use the client's API, ...
* elsewhere: RFC 9457 problem details (``application/problem+json``).

Bad input is always a 4xx: malformed JSON, wrong types and out-of-range parameters are
caught by validation and reported field by field. A 500 is reserved for our own bugs.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.jsonutil import ExactJSONResponse

log = logging.getLogger(__name__)

# OCPI 2.2.1 status codes (status_codes.asciidoc).
OCPI_SUCCESS = 1000
OCPI_CLIENT_ERROR = 2000
OCPI_INVALID_PARAMETERS = 2001
OCPI_NOT_ENOUGH_INFORMATION = 2002
OCPI_UNKNOWN_LOCATION = 2003
OCPI_UNKNOWN_TOKEN = 2004
OCPI_SERVER_ERROR = 3000
OCPI_UNABLE_TO_USE_CLIENT_API = 3001
OCPI_UNSUPPORTED_VERSION = 3002
OCPI_NO_MATCHING_ENDPOINTS = 3003

HTTP_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def ocpi_envelope(data: Any = None, status_code: int = OCPI_SUCCESS, status_message: str | None = None) -> dict:
    """The OCPI response format: ``data`` (omitted when None), ``status_code``, ``status_message``, ``timestamp``."""
    body: dict[str, Any] = {}
    if data is not None:
        body["data"] = data
    body["status_code"] = status_code
    if status_message is not None:
        body["status_message"] = status_message
    body["timestamp"] = utcnow()
    return body


class OcpiError(Exception):
    """An error answered with the OCPI envelope (on ``/ocpi/...``)."""

    def __init__(
        self,
        http_status: int,
        status_code: int,
        message: str,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.status_code = status_code
        self.message = message
        self.data = data
        self.headers = headers


class ProblemError(Exception):
    """An error answered with RFC 9457 problem details (outside ``/ocpi``)."""

    def __init__(
        self,
        status: int,
        detail: str,
        title: str | None = None,
        errors: list[dict] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTP_TITLES.get(status, "Error")
        self.errors = errors
        self.headers = headers


class ApiError(Exception):
    """An error raised by code shared by both audiences; rendered per the request's path."""

    def __init__(self, http_status: int, message: str, ocpi_status: int = OCPI_CLIENT_ERROR,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message
        self.ocpi_status = ocpi_status
        self.headers = headers


def is_ocpi(request: Request) -> bool:
    return request.url.path.startswith("/ocpi")


def problem_response(request: Request, status: int, detail: str, title: str | None = None,
                     errors: list[dict] | None = None, headers: dict[str, str] | None = None) -> ExactJSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTP_TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors:
        body["errors"] = errors
    return ExactJSONResponse(body, status_code=status, headers=headers, media_type="application/problem+json")


def ocpi_error_response(http_status: int, status_code: int, message: str, data: Any = None,
                        headers: dict[str, str] | None = None) -> ExactJSONResponse:
    return ExactJSONResponse(ocpi_envelope(data, status_code, message), status_code=http_status, headers=headers)


def _error_response(request: Request, http_status: int, message: str, ocpi_status: int,
                    errors: list[dict] | None = None, headers: dict[str, str] | None = None):
    if is_ocpi(request):
        return ocpi_error_response(http_status, ocpi_status, message, data=errors, headers=headers)
    return problem_response(request, http_status, message, errors=errors, headers=headers)


def validation_errors(exc: RequestValidationError) -> list[dict]:
    """Pydantic's errors reduced to JSON-safe ``{"field", "reason"}`` pairs."""
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        out.append({"field": ".".join(loc), "reason": str(err.get("msg", "invalid"))})
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OcpiError)
    async def _ocpi_error(request: Request, exc: OcpiError):
        if not is_ocpi(request):  # shared code raised an OCPI error outside /ocpi
            return problem_response(request, exc.http_status, exc.message, headers=exc.headers)
        return ocpi_error_response(exc.http_status, exc.status_code, exc.message, exc.data, exc.headers)

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError):
        if is_ocpi(request):
            return ocpi_error_response(exc.status, OCPI_CLIENT_ERROR if exc.status < 500 else OCPI_SERVER_ERROR,
                                       exc.detail, exc.errors, exc.headers)
        return problem_response(request, exc.status, exc.detail, exc.title, exc.errors, exc.headers)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return _error_response(request, exc.http_status, exc.message, exc.ocpi_status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = validation_errors(exc)
        summary = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:5]) or "invalid request"
        return _error_response(request, 400, f"Invalid request: {summary}", OCPI_INVALID_PARAMETERS, errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else HTTP_TITLES.get(exc.status_code, "Error")
        ocpi_status = OCPI_CLIENT_ERROR if exc.status_code < 500 else OCPI_SERVER_ERROR
        return _error_response(request, exc.status_code, detail, ocpi_status, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error_response(request, 500, "Internal error; it has been logged", OCPI_SERVER_ERROR)
