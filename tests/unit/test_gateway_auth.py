"""Security profile 1: Basic auth parsing and salted scrypt password hashes."""

from gateway.auth import basic_authorization_header, hash_password, parse_basic_authorization, verify_password

FAST = 2**10  # low scrypt cost keeps the unit tests fast; the format stores it per hash


def test_the_right_password_verifies_and_a_wrong_one_does_not():
    stored = hash_password("s3cret-password", n=FAST)
    assert verify_password("s3cret-password", stored)
    assert not verify_password("s3cret-passwore", stored)
    assert not verify_password("", stored)


def test_hashes_are_salted_and_do_not_contain_the_password():
    a, b = hash_password("same", n=FAST), hash_password("same", n=FAST)
    assert a != b and "same" not in a
    assert a.startswith(f"scrypt${FAST}$8$1$")


def test_a_malformed_stored_hash_never_verifies():
    for stored in ("", "plain", "md5$1$2$3$4$5", "scrypt$x$8$1$AAAA$AAAA", "scrypt$1024$8$1$!!$AAAA"):
        assert not verify_password("anything", stored)


def test_basic_header_round_trip_keeps_colons_in_the_password():
    header = basic_authorization_header("CP-1", "pa:ss:word")
    creds = parse_basic_authorization(header)
    assert (creds.username, creds.password) == ("CP-1", "pa:ss:word")


def test_malformed_or_other_authorization_headers_give_no_credentials():
    for header in (None, "", "Bearer abc", "Basic", "Basic !!!notbase64", "Basic " + "bm9jb2xvbg=="):
        assert parse_basic_authorization(header) is None  # last one: "nocolon"
