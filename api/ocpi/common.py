"""Pieces every OCPI module uses: base URLs, the envelope, pagination, routing headers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Request

from api.errors import OCPI_INVALID_PARAMETERS, OcpiError, ocpi_envelope
from api.jsonutil import ExactJSONResponse, format_datetime
from api.security import OcpiClient

VERSION = "2.2.1"


def base_url(request: Request) -> str:
    """Public base URL (``api_public_url`` setting, else the one the request came in on)."""
    configured = request.app.state.settings.api_public_url
    return (configured or str(request.base_url)).rstrip("/")


def versions_url(request: Request) -> str:
    return f"{base_url(request)}/ocpi/versions"


def ocpi_response(data: Any = None, status_code: int = 1000, status_message: str | None = None,
                  http_status: int = 200, headers: dict[str, str] | None = None) -> ExactJSONResponse:
    return ExactJSONResponse(ocpi_envelope(data, status_code, status_message), status_code=http_status,
                             headers=headers)


def as_utc(value: datetime | None) -> datetime | None:
    """OCPI DateTimes are UTC; a value without offset is read as UTC (types.asciidoc, DateTime)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise OcpiError(400, OCPI_INVALID_PARAMETERS, f"{value.isoformat()} is out of the representable range")


@dataclass(frozen=True)
class PageRequest:
    """The paginated request parameters (transport_and_format.asciidoc, "Paginated Request")."""

    date_from: datetime | None
    date_to: datetime | None
    offset: int
    limit: int | None

    def effective_limit(self, server_max: int) -> int:
        return server_max if self.limit is None else min(self.limit, server_max)


async def page_request(
    date_from: Annotated[datetime | None, Query(description="Only objects with last_updated >= this (inclusive)")] = None,
    date_to: Annotated[datetime | None, Query(description="Only objects with last_updated < this (exclusive)")] = None,
    offset: Annotated[int, Query(ge=0, le=2_000_000_000, description="Index of the first object, default 0")] = 0,
    limit: Annotated[int | None, Query(ge=1, le=2_000_000_000, description="Maximum objects to return")] = None,
) -> PageRequest:
    date_from, date_to = as_utc(date_from), as_utc(date_to)
    if date_from is not None and date_to is not None and date_to < date_from:
        raise OcpiError(400, OCPI_INVALID_PARAMETERS, "date_to must not be before date_from")
    return PageRequest(date_from, date_to, offset, limit)


def pagination_headers(request: Request, page: PageRequest, total: int, limit: int, returned: int) -> dict[str, str]:
    """``X-Total-Count``, ``X-Limit`` and, unless this is the last page, ``Link: <next>; rel="next"``
    carrying the request's filters (transport_and_format.asciidoc, "Paginated Response")."""
    headers = {"X-Total-Count": str(total), "X-Limit": str(limit)}
    next_offset = page.offset + returned
    if returned > 0 and next_offset < total:
        params: dict[str, str] = {"offset": str(next_offset), "limit": str(limit)}
        if page.date_from is not None:
            params["date_from"] = format_datetime(page.date_from)
        if page.date_to is not None:
            params["date_to"] = format_datetime(page.date_to)
        url = f"{base_url(request)}{request.url.path}?{urlencode(params)}"
        headers["Link"] = f'<{url}>; rel="next"'
    return headers


def routing_parties(request: Request, client: OcpiClient, our_party: tuple[str, str]) -> set[tuple[str, str]]:
    """Apply the OCPI-to/OCPI-from routing headers (transport_and_format.asciidoc, "Message Routing").

    ``OCPI-to-*`` must address us; ``OCPI-from-*`` must be one of the partner's agreed parties and,
    when given, narrows the request to that party. Returns the parties the request speaks for.
    """
    h = request.headers
    to_cc, to_pid = h.get("ocpi-to-country-code"), h.get("ocpi-to-party-id")
    if (to_cc or to_pid) and ((to_cc or "").upper(), (to_pid or "").upper()) != our_party:
        raise OcpiError(400, OCPI_INVALID_PARAMETERS,
                        f"OCPI-to headers address {to_cc}*{to_pid}; this platform is {our_party[0]}*{our_party[1]}")
    parties = client.parties()
    from_cc, from_pid = h.get("ocpi-from-country-code"), h.get("ocpi-from-party-id")
    if from_cc or from_pid:
        wanted = ((from_cc or "").upper(), (from_pid or "").upper())
        if wanted not in parties:
            raise OcpiError(403, OCPI_INVALID_PARAMETERS,
                            f"OCPI-from headers name {wanted[0]}*{wanted[1]}, which is not one of your registered parties")
        return {wanted}
    return parties


def response_routing_headers(request: Request, our_party: tuple[str, str], client: OcpiClient) -> dict[str, str]:
    """Routing headers of a direct response: from us, to the requesting party."""
    h = request.headers
    to_cc = h.get("ocpi-from-country-code")
    to_pid = h.get("ocpi-from-party-id")
    if not (to_cc and to_pid) and client.roles:
        to_cc, to_pid = client.roles[0].country_code, client.roles[0].party_id
    headers = {"OCPI-from-country-code": our_party[0], "OCPI-from-party-id": our_party[1]}
    if to_cc and to_pid:
        headers["OCPI-to-country-code"] = to_cc.upper()
        headers["OCPI-to-party-id"] = to_pid.upper()
    return headers
