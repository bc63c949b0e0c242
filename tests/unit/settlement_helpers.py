"""Builders for hand-written settlement scenarios (OCPI 2.2.1 CDR JSON, trimmed to what matters)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from settlement.contracts import Contract, Tolerances

CPO = "NL*CPO"
EMSP = "DE*MSP"
T0 = datetime(2026, 10, 5, 8, 0, tzinfo=timezone.utc)


def contract(**kw: Any) -> Contract:
    base = dict(
        id="NLCPO-DEMSP", cpo=CPO, emsp=EMSP, currency="EUR",
        tolerances=Tolerances(amount=Decimal("0.01"), energy_kwh=Decimal("0.01"), duration_s=60, start_s=120),
    )
    base.update(kw)
    return Contract(**base)


def cdr(
    cdr_id: str,
    *,
    evse: str = "NL*CPO*E1",
    start: datetime = T0,
    minutes: float = 60,
    kwh: str = "20.000",
    excl: str = "10.00",
    incl: str | None = "12.10",
    currency: str = "EUR",
    credit: bool | None = None,
    credit_reference_id: str | None = None,
    cpo: str = CPO,
    emsp: str = EMSP,
) -> dict[str, Any]:
    cc, pid = cpo.split("*")
    ecc, epid = emsp.split("*")
    end = start + timedelta(minutes=minutes)
    doc: dict[str, Any] = {
        "country_code": cc, "party_id": pid, "id": cdr_id,
        "start_date_time": start.isoformat().replace("+00:00", "Z"),
        "end_date_time": end.isoformat().replace("+00:00", "Z"),
        "cdr_token": {"country_code": ecc, "party_id": epid, "uid": "TOKEN1", "type": "RFID",
                      "contract_id": f"{ecc}-{epid}-C00000001"},
        "auth_method": "WHITELIST",
        "cdr_location": {"id": "LOC1", "address": "Main St 1", "city": "Utrecht", "country": "NLD",
                         "coordinates": {"latitude": "52.09000", "longitude": "5.12000"},
                         "evse_uid": evse, "evse_id": evse, "connector_id": "1",
                         "connector_standard": "IEC_62196_T2", "connector_format": "SOCKET",
                         "connector_power_type": "AC_3_PHASE"},
        "currency": currency,
        "charging_periods": [{"start_date_time": start.isoformat().replace("+00:00", "Z"),
                              "dimensions": [{"type": "ENERGY", "volume": float(kwh)}]}],
        "total_cost": {"excl_vat": excl} if incl is None else {"excl_vat": excl, "incl_vat": incl},
        "total_energy": kwh,
        "total_time": str(Decimal(minutes) / 60),
        "last_updated": end.isoformat().replace("+00:00", "Z"),
    }
    if credit is not None:
        doc["credit"] = credit
    if credit_reference_id is not None:
        doc["credit_reference_id"] = credit_reference_id
    return doc
