"""Session identity and the CDR ids derived from it.

A session is (charge point id, transaction id) (see docs/ocpp-sessions.md, "Identity").
OCPP 1.6 transaction ids are integers assigned by the central system, 2.0.1/2.1 ids are
strings chosen by the charging station; both are kept as text.

``session_id``: ``<charge point id>/<transaction id>``, readable and used as the Kafka key
downstream and as the ``sessions`` table key. OCPP-J puts the charge point id in the last
URL path segment, so it normally carries no ``/``; should one arrive anyway, ``%`` and
``/`` in the charge point id are percent-encoded, so the first ``/`` always separates the
two parts and the key is unambiguous.

CDR ids (OCPI 2.2.1 mod_cdrs section 3.1: ``id`` CiString(39), unique per
country_code/party_id) are derived deterministically, so reprocessing the same events
yields the same ids:

* base id: ``"S"`` + the first 26 characters of the base32 SHA-256 of the JSON array
  ``[charge_point_id, transaction_id]`` (130 bits; 27 characters). Base32 upper case
  because OCPI ids are case-insensitive.
* the CDR of version 0 (first issue) is the base id;
* a replacement CDR of version ``v >= 1`` (after a correction) is ``<base>-R<v>``;
* the credit CDR cancelling the CDR of version ``v`` is ``<base>-C<v>``
  (its ``credit_reference_id`` is the id of version ``v``).

Versions go up to 99999, so every id is at most 27 + 6 = 33 characters.

``ocpi_session_id``: the same hash with prefix ``"T"``, for the CDR's ``session_id``
(CiString(36)).
"""

from __future__ import annotations

import functools
import hashlib
import json

MAX_VERSION = 99_999
_HASH_CHARS = 26


def session_id_for(charge_point_id: str, transaction_id: str | int) -> str:
    """``<charge point id>/<transaction id>`` (``%`` and ``/`` in the charge point id
    percent-encoded)."""
    escaped = charge_point_id.replace("%", "%25").replace("/", "%2F")
    return f"{escaped}/{transaction_id}"


#: ``json.dumps(..., ensure_ascii=False)`` without building the encoder on every call.
_JSON = json.JSONEncoder(ensure_ascii=False)
_sha256 = hashlib.sha256
#: RFC 4648 base32 alphabet, and every pair of its characters (10 bits -> 2 characters).
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_BASE32_PAIRS = [a + b for a in _BASE32 for b in _BASE32]
#: The _HASH_CHARS (26) characters kept are the digest's first 130 bits: 13 pairs of 10 bits.
_PAIR_SHIFTS = tuple(range(120, -1, -10))


def _base32_head(raw: bytes) -> str:
    """``base64.b32encode(raw).decode()[:26]`` for a digest of at least 17 bytes (base32
    writes the bits in order, 5 per character), without the pure-Python encoder."""
    bits = int.from_bytes(raw[:17], "big") >> 6  # 136 bits -> the first 130
    pairs = _BASE32_PAIRS
    return "".join([pairs[(bits >> shift) & 0x3FF] for shift in _PAIR_SHIFTS])


def _json_pair(charge_point_id: str, transaction_id: str) -> str:
    """``json.dumps([charge_point_id, transaction_id], ensure_ascii=False)``. Written directly
    when neither string has a character that JSON escapes (``"``, ``\\`` and the control
    characters, which are all not printable); the encoder for anything else."""
    if (type(charge_point_id) is str and type(transaction_id) is str
            and charge_point_id.isprintable() and transaction_id.isprintable() and '"' not in charge_point_id
            and "\\" not in charge_point_id and '"' not in transaction_id and "\\" not in transaction_id):
        return f'["{charge_point_id}", "{transaction_id}"]'
    return _JSON.encode([charge_point_id, transaction_id])


@functools.lru_cache(maxsize=4096, typed=True)
def _digest(charge_point_id: str, transaction_id: str | int) -> str:
    """Cached: a session's ids are asked for several times (summary, versions, credit)."""
    canonical = _json_pair(charge_point_id, str(transaction_id))
    return _base32_head(_sha256(canonical.encode("utf-8")).digest())


def _check_version(version: int) -> None:
    if not 0 <= version <= MAX_VERSION:
        raise ValueError(f"CDR version {version} outside 0..{MAX_VERSION}")


def cdr_id_for(charge_point_id: str, transaction_id: str | int, version: int = 0) -> str:
    """The id of the session's CDR of ``version`` (0: first issue, >= 1: replacement)."""
    _check_version(version)
    base = "S" + _digest(charge_point_id, transaction_id)
    return base if version == 0 else f"{base}-R{version}"


def credit_cdr_id_for(charge_point_id: str, transaction_id: str | int, cancelled_version: int) -> str:
    """The id of the credit CDR that cancels the CDR of ``cancelled_version``."""
    _check_version(cancelled_version)
    return "S" + _digest(charge_point_id, transaction_id) + f"-C{cancelled_version}"


def ocpi_session_id_for(charge_point_id: str, transaction_id: str | int) -> str:
    """A deterministic OCPI Session id (CiString(36)) for the CDR's ``session_id``."""
    return "T" + _digest(charge_point_id, transaction_id)
