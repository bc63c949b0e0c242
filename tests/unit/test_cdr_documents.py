"""streams/cdrs.py: the CdrToken and CdrLocation of a session, built once and reused."""

from types import SimpleNamespace

from chargeledger.settings import Settings
from schemas.ocpi import CdrLocation, CdrToken, TokenType
from streams.cdrs import cdr_location_for, cdr_token_for, emsp_of_token

SETTINGS = Settings(country_code="NL", party_id="CLG", location_id="LOC-CLG-0001")


def test_emsp_contract_token_names_its_emsp():
    token = cdr_token_for("DEEMPC12345678", SETTINGS)
    assert token == CdrToken(country_code="DE", party_id="EMP", uid="DEEMPC12345678", type=TokenType.RFID,
                             contract_id="DEEMPC12345678")


def test_local_tag_and_missing_tag_are_our_own_other_tokens():
    assert cdr_token_for("04a1b2", SETTINGS) == CdrToken(country_code="NL", party_id="CLG", uid="04a1b2",
                                                         type=TokenType.OTHER, contract_id="04a1b2")
    assert cdr_token_for(None, SETTINGS).uid == "UNKNOWN"


def test_tokens_are_what_the_constructor_gives():
    """_cdr_token runs CdrToken's validator on a dict: the same fields, order and fields set."""
    for tag in ("DEEMPC12345678", "04a1b2", None, "x" * 40, "nlTNM0001", "12345"):
        token = cdr_token_for(tag, SETTINGS)
        uid = (tag or "UNKNOWN")[:36]
        emsp = emsp_of_token(uid)  # (the parsing is tested above; here: the model built from it)
        built = CdrToken(country_code=emsp[0] if emsp else "NL", party_id=emsp[1] if emsp else "CLG", uid=uid,
                         type=TokenType.RFID if emsp else TokenType.OTHER, contract_id=uid)
        assert token == built
        assert list(token.__dict__) == list(built.__dict__)
        assert token.__pydantic_fields_set__ == built.__pydantic_fields_set__


def test_tokens_are_reused_per_tag_and_party():
    assert cdr_token_for("04a1b2", SETTINGS) is cdr_token_for("04a1b2", SETTINGS)
    other_party = Settings(country_code="BE", party_id="XYZ", location_id="LOC-CLG-0001")
    token = cdr_token_for("04a1b2", other_party)
    assert (token.country_code, token.party_id) == ("BE", "XYZ")


def _session(cp="CP-0007", evse=2, connector=1):
    return SimpleNamespace(charge_point_id=cp, evse_id=evse, connector_id=connector)


def test_location_names_the_evse_of_the_session():
    location = cdr_location_for(_session(), SETTINGS)
    assert isinstance(location, CdrLocation)
    assert (location.id, location.evse_uid, location.evse_id, location.connector_id) == (
        "LOC-CLG-0001", "CP-0007-2", "NL*CLG*ECP0007*2", "1")


def test_locations_are_reused_per_evse_connector_and_settings():
    assert cdr_location_for(_session(), SETTINGS) is cdr_location_for(_session(), SETTINGS)
    assert cdr_location_for(_session(connector=3), SETTINGS).connector_id == "3"
    assert cdr_location_for(_session(evse=None), SETTINGS).evse_uid == "CP-0007-1"
    moved = Settings(country_code="NL", party_id="CLG", location_id="LOC-CLG-0002")
    assert cdr_location_for(_session(), moved).id == "LOC-CLG-0002"
    # True == 1 as a dict key; the cache keeps the types apart (the text would differ)
    assert cdr_location_for(_session(evse=True), SETTINGS).evse_uid == "CP-0007-True"
