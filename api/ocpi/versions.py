"""Versions module (version_information_endpoint.asciidoc): which OCPI versions we speak and
which endpoints we offer for 2.2.1. Token A (registration in progress) is accepted here."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from api.ocpi.common import VERSION, base_url, ocpi_response
from api.security import OcpiClient, ocpi_client

router = APIRouter(prefix="/ocpi", tags=["ocpi: versions"])


def our_endpoints(request: Request) -> list[dict]:
    """Endpoints of version 2.2.1. The credentials module is listed as SENDER, as the spec
    advises (version_information_endpoint.asciidoc, Endpoint class NOTE)."""
    base = base_url(request)
    return [
        {"identifier": "credentials", "role": "SENDER", "url": f"{base}/ocpi/{VERSION}/credentials"},
        {"identifier": "cdrs", "role": "SENDER", "url": f"{base}/ocpi/cpo/{VERSION}/cdrs"},
        {"identifier": "tariffs", "role": "SENDER", "url": f"{base}/ocpi/cpo/{VERSION}/tariffs"},
        {"identifier": "cdrs", "role": "RECEIVER", "url": f"{base}/ocpi/emsp/{VERSION}/cdrs"},
    ]


@router.get("/versions", summary="Supported OCPI versions")
def get_versions(request: Request, client: OcpiClient = Depends(ocpi_client)):
    return ocpi_response([{"version": VERSION, "url": f"{base_url(request)}/ocpi/{VERSION}"}])


@router.get(f"/{VERSION}", summary="Endpoints of OCPI 2.2.1")
def get_version_details(request: Request, client: OcpiClient = Depends(ocpi_client)):
    return ocpi_response({"version": VERSION, "endpoints": our_endpoints(request)})
