"""Charge point authentication, OCPP security profile 1 (HTTP Basic auth over the upgrade).

OCPP 1.6 Security Whitepaper section 2.3 / OCPP 2.0.1 Part 2 A00.FR.2xx: the charge point
sends ``Authorization: Basic base64(<charge point id>:<password>)`` with the WebSocket
upgrade request; the user name must equal the charge point id in the URL. The central
system stores only a salted hash of the password.

Hash format: ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`` (RFC 7914 scrypt via hashlib).
The cost is stored with each hash so it can be raised later without breaking old ones.
Pure: no I/O here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass

#: Default scrypt cost: ~30 ms of CPU per check on a 2020s server core.
DEFAULT_N = 2**14
DEFAULT_R = 8
DEFAULT_P = 1
_DKLEN = 32
_MAXMEM = 128 * 1024 * 1024


def hash_password(password: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P,
                  salt: bytes | None = None) -> str:
    """A salted scrypt hash of ``password`` in the stored format."""
    if not password:
        raise ValueError("password must not be empty")
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=_DKLEN)
    return "$".join(
        ["scrypt", str(n), str(r), str(p), base64.b64encode(salt).decode(), base64.b64encode(digest).decode()]
    )


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches the ``stored`` hash (constant-time comparison)."""
    try:
        scheme, n, r, p, salt_b64, hash_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt = base64.b64decode(salt_b64, validate=True)
        expected = base64.b64decode(hash_b64, validate=True)
        digest = hashlib.scrypt(
            password.encode(), salt=salt, n=int(n), r=int(r), p=int(p), maxmem=_MAXMEM, dklen=len(expected)
        )
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(digest, expected)


@dataclass(frozen=True)
class BasicCredentials:
    username: str
    password: str


def parse_basic_authorization(header: str | None) -> BasicCredentials | None:
    """Parse an ``Authorization: Basic ...`` header (RFC 7617); None when absent or malformed.

    The password may contain ``:``; only the first colon separates user and password.
    """
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    if not sep:
        return None
    return BasicCredentials(username, password)


def basic_authorization_header(username: str, password: str) -> str:
    """The header value a charge point sends (used by the simulator and the tests)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
