"""From a completed session to the OCPI CDR documents the pipeline issues.

Pure: a CDR is a function of the completed session (itself a fold of the session's
events), the tariff version and the location, so reprocessing yields byte-identical JSON.
No wall-clock time goes in: ``last_updated`` is ``CompletedSession.issued_at``, the
``received_at`` of the latest event of the session (or its idle-close time): from the event
log, so replays agree, and never before the CDR could exist, so partners pulling CDRs by
``date_from`` on last_updated do not miss the CDR of an offline charger's late events.

* :func:`cdr_token_for`: OCPI CdrToken (mod_cdrs 3.4.3) from the OCPP id tag. Our tokens
  are eMSP contract ids ``<country code><party id>...`` (e.g. ``NLTNMC00012345``): the
  first five characters name the eMSP. A tag without that shape (a local RFID card) is
  attributed to ourselves (settings.country_code / party_id) as an OTHER token.
* :func:`cdr_location_for`: OCPI CdrLocation (mod_cdrs 3.4.2) of the charge point's EVSE at
  the configured location.
* :func:`session_cdrs`: the CDR of a session version, and for a correction (version >= 1)
  first the credit CDR of the version it replaces (mod_cdrs "Credit CDRs": same session,
  negated costs, ``credit_reference_id`` = the replaced id).
"""

from __future__ import annotations

import re
from functools import lru_cache

from chargeledger.settings import Settings
from pricing import build_cdr, credit_cdr, price_session
from pricing.cdr import _ci_string, cdr_json_from_rows
from pricing.engine import price_rows
from pricing.periods import period_rows_from_readings
from schemas.ocpi import (
    AuthMethod,
    Cdr,
    CdrLocation,
    CdrToken,
    ConnectorFormat,
    ConnectorType,
    GeoLocation,
    PowerType,
    Tariff,
    TokenType,
    _quote,
)
from sessions import CompletedSession
from sessions.fold import remark_text

_EMSP_PREFIX = re.compile(r"^([A-Z]{2})([A-Z0-9]{3})")

#: The demo's location (an OCPI Location would come from the locations module).
LOCATION_ADDRESS = {"name": "chargeledger depot", "address": "Stationsplein 1", "city": "Amsterdam",
                    "postal_code": "1012AB", "country": "NLD"}
LOCATION_COORDINATES = GeoLocation(latitude="52.37892", longitude="4.90060")


def emsp_of_token(uid: str | None) -> tuple[str, str] | None:
    """(country code, party id) of the eMSP that issued a contract-id token, else None."""
    if not uid:
        return None
    match = _EMSP_PREFIX.match(uid.upper())
    if match is None:
        return None
    return match.group(1), match.group(2)


def cdr_token_for(id_tag: str | None, settings: Settings) -> CdrToken:
    """The CdrToken of an OCPP id tag (one validated object per tag and party, reused:
    CdrToken is frozen and holds only strings and an enum)."""
    return _cdr_token(id_tag, settings.country_code, settings.party_id)


@lru_cache(maxsize=8192, typed=True)
def _cdr_token(id_tag: str | None, country_code: str, party_id: str) -> CdrToken:
    uid = (id_tag or "UNKNOWN")[:36]
    emsp = emsp_of_token(uid)
    # What CdrToken(**fields) runs (BaseModel.__init__ hands the keywords to this validator).
    if emsp is None:
        return _validate_token({"country_code": country_code, "party_id": party_id, "uid": uid,
                                "type": TokenType.OTHER, "contract_id": uid})
    return _validate_token({"country_code": emsp[0], "party_id": emsp[1], "uid": uid, "type": TokenType.RFID,
                            "contract_id": uid})


_validate_token = CdrToken.__pydantic_validator__.validate_python


def evse_uid_for(charge_point_id: str, evse_id: int | None) -> str:
    return f"{charge_point_id}-{evse_id or 1}"[-36:]


def cdr_location_for(session: CompletedSession, settings: Settings) -> CdrLocation:
    """The CdrLocation of the session's EVSE (one validated object per EVSE, connector and
    party, reused: CdrLocation is frozen and holds only strings, enums and a frozen
    GeoLocation)."""
    return _cdr_location(session.charge_point_id, session.evse_id, session.connector_id,
                         settings.location_id, settings.country_code, settings.party_id)


@lru_cache(maxsize=8192, typed=True)
def _cdr_location(charge_point_id: str, evse_id: int | None, connector_id: int | None,
                  location_id: str, country_code: str, party_id: str) -> CdrLocation:
    evse = evse_id or 1
    cp = re.sub(r"[^A-Za-z0-9]", "", charge_point_id).upper()
    return CdrLocation(
        id=location_id,
        coordinates=LOCATION_COORDINATES,
        evse_uid=evse_uid_for(charge_point_id, evse_id),
        # eMI3 EVSE id: <country>*<operator>*E<power outlet id>
        evse_id=f"{country_code}*{party_id}*E{cp}*{evse}"[:48],
        connector_id=str(connector_id or 1),
        connector_standard=ConnectorType.IEC_62196_T2,
        connector_format=ConnectorFormat.SOCKET,
        connector_power_type=PowerType.AC_3_PHASE,
        **LOCATION_ADDRESS,
    )


_AUTH_REQUEST = AuthMethod.AUTH_REQUEST
#: What :func:`session_cdr` reads of a session that is not exactly a CompletedSession.
_SESSION_FIELDS = ("readings", "start", "end", "cdr_id", "ocpi_session_id", "id_tag", "issued_at",
                   "charge_point_id", "evse_id", "connector_id", "remarks")


def session_cdr(session: CompletedSession, tariff: Tariff, settings: Settings) -> Cdr:
    """The CDR of this version of the session, priced with ``tariff``."""
    # The session's fields from its instance dict (one attribute read: pydantic models have
    # a ``__getattr__``, so each attribute read takes the generic slow path); the token and
    # location as cdr_token_for / cdr_location_for give them.
    fields = session.__dict__ if type(session) is CompletedSession else {
        name: getattr(session, name) for name in _SESSION_FIELDS}
    country_code, party_id = settings.country_code, settings.party_id
    start, end = fields["start"], fields["end"]
    priced = price_session(
        fields["readings"],
        tariff,
        time_zone=settings.location_time_zone,
        session_start=start,
        session_end=end,
    )
    return build_cdr(
        priced,
        id=fields["cdr_id"],
        country_code=country_code,
        party_id=party_id,
        session_id=fields["ocpi_session_id"],
        start_date_time=start,
        end_date_time=end,
        cdr_token=_cdr_token(fields["id_tag"], country_code, party_id),
        auth_method=_AUTH_REQUEST,
        cdr_location=_cdr_location(fields["charge_point_id"], fields["evse_id"], fields["connector_id"],
                                   settings.location_id, country_code, party_id),
        tariff=tariff,
        last_updated=fields["issued_at"],
        remark=remark_text(fields["remarks"]),
    )


def _token_json(id_tag: str | None, country_code: str, party_id: str) -> tuple[str, str, str] | None:
    """(the JSON, country_code, party_id) of ``_cdr_token(id_tag, country_code, party_id)``,
    without validating the CdrToken, or None when validation would not keep a value as it
    is (then _cdr_token decides). The same fields: the uid (36 characters at most) as
    uid and contract_id, the eMSP of a contract id (RFID), else ourselves (OTHER)."""
    uid = (id_tag or "UNKNOWN")[:36]
    if not _ci_string(uid, 36):
        return None
    emsp = emsp_of_token(uid)
    if emsp is None:
        if not (_ci_string(country_code, 2) and _ci_string(party_id, 3)):
            return None
        kind = _OTHER_JSON
    else:
        country_code, party_id = emsp  # two letters, three letters or digits: printable ASCII
        kind = _RFID_JSON
    quoted = _quote(uid)
    return (f'{{"country_code":{_quote(country_code)},"party_id":{_quote(party_id)},"uid":{quoted},"type":{kind}'
            f',"contract_id":{quoted}}}', country_code, party_id)


_OTHER_JSON = '"' + TokenType.OTHER.value + '"'
_RFID_JSON = '"' + TokenType.RFID.value + '"'


def tariff_json(tariff: Tariff) -> str:
    """The OCPI JSON of a tariff (``tariff.model_dump_json()``), for :func:`session_cdr_row`."""
    return tariff.model_dump_json()


def session_cdr_row(session: CompletedSession, tariff: Tariff, settings: Settings,
                    tariff_text: str | None = None) -> dict | None:
    """The ``cdrs`` row (``streams.billing.Billing._cdr_rows``) of ``session_cdr(session,
    tariff, settings)``, made from plain data: the session priced from period rows
    (``pricing.engine.price_rows``, the engine's own code) and the CDR's JSON written from
    them (``pricing.cdr.cdr_json_from_rows``), without the ChargingPeriod, Price and Cdr
    models (issue 4). None when that JSON writer leaves the CDR to build_cdr (a value it
    does not keep as is): then the caller takes session_cdr. Compared with the model path
    by tests/unit/test_cdr_plain_json.py. ``tariff_text``: :func:`tariff_json` of ``tariff``
    when the caller keeps it (written here otherwise)."""
    fields = session.__dict__ if type(session) is CompletedSession else {
        name: getattr(session, name) for name in _SESSION_FIELDS}
    country_code, party_id = settings.country_code, settings.party_id
    start, end = fields["start"], fields["end"]
    time_zone = settings.location_time_zone
    rows = period_rows_from_readings(fields["readings"], tariff, time_zone=time_zone, session_start=start,
                                     session_end=end)
    priced = price_rows(rows, tariff, time_zone=time_zone, session_start=start, session_end=end)
    token = _token_json(fields["id_tag"], country_code, party_id)
    if token is None:
        return None
    location = _cdr_location(fields["charge_point_id"], fields["evse_id"], fields["connector_id"],
                             settings.location_id, country_code, party_id)
    cdr_id = fields["cdr_id"]
    written = cdr_json_from_rows(
        priced,
        rows,
        id=cdr_id,
        country_code=country_code,
        party_id=party_id,
        session_id=fields["ocpi_session_id"],
        start_date_time=start,
        end_date_time=end,
        cdr_token_json=token[0],
        auth_method=_AUTH_REQUEST,
        cdr_location=location,
        tariff=tariff,
        tariff_json=tariff_json(tariff) if tariff_text is None else tariff_text,
        last_updated=fields["issued_at"],
        remark=remark_text(fields["remarks"]),
    )
    if written is None:
        return None
    document, start, end, last_updated = written
    total_cost = priced[5]
    location_fields = location.__dict__
    return {  # the keys and values of Billing._cdr_rows
        "country_code": country_code,
        "party_id": party_id,
        "id": cdr_id,
        "start_date_time": start,
        "end_date_time": end,
        "currency": priced[0],
        "total_cost_excl_vat": total_cost[0],
        "total_cost_incl_vat": total_cost[1],
        "total_energy": priced[11],
        "total_time": priced[12],
        "total_parking_time": priced[13],
        "credit": False,
        "credit_reference_id": None,
        "emsp_country_code": token[1],
        "emsp_party_id": token[2],
        "location_id": location_fields["id"],
        "evse_uid": location_fields["evse_uid"],
        "tariff_id": tariff.id,
        "tariff_version": tariff.last_updated,
        "last_updated": last_updated,
        "session_key": fields["session_id"] if type(session) is CompletedSession else session.session_id,
        "cdr_json": document,
    }


def credit_for(replaced: Cdr, session: CompletedSession) -> Cdr:
    """The credit CDR cancelling ``replaced`` (its last_updated: when the correcting event
    was received, ``session.issued_at``; never before the replaced CDR's)."""
    assert session.credit_cdr_id is not None
    return credit_cdr(replaced, id=session.credit_cdr_id,
                      last_updated=max(replaced.last_updated, session.issued_at))


def cdr_json(cdr: Cdr) -> str:
    """The bytes we publish and store (OCPI JSON, exact numbers, no None fields)."""
    return cdr.model_dump_json()
