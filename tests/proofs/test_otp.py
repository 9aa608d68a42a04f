"""The TOTP module against RFC 4226 appendix D and RFC 6238 appendix B (../shared/vectors)."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from callproof.proofs import totp as otp

from .otp_by_hand import hotp as hotp_by_hand
from .otp_by_hand import key_of

RFC_KEY = b"12345678901234567890"
RFC_SECRET = base64.b32encode(RFC_KEY).decode()
HOTP_VECTORS = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
                "399871", "520489"]
TOTP_SHA1_VECTORS = [(59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"),
                     (1234567890, "89005924"), (2000000000, "69279037"),
                     (20000000000, "65353130")]


@pytest.mark.parametrize("counter", range(10))
def test_rfc4226_hotp_vectors(counter: int) -> None:
    assert otp.hotp(RFC_SECRET, counter) == HOTP_VECTORS[counter]
    assert hotp_by_hand(RFC_KEY, counter) == HOTP_VECTORS[counter]


@pytest.mark.parametrize(("t", "code"), TOTP_SHA1_VECTORS)
def test_rfc6238_totp_sha1_vectors(t: int, code: str) -> None:
    assert otp.code_at(RFC_SECRET, t, digits=8) == code
    # the same instant as an aware datetime, where that year fits datetime
    if t < 253402300800:
        assert otp.code_at(RFC_SECRET, datetime.fromtimestamp(t, UTC), digits=8) == code


def test_parameters_are_the_ones_every_app_supports() -> None:
    assert (otp.ALGORITHM, otp.DIGITS, otp.PERIOD, otp.SECRET_BYTES) == ("SHA1", 6, 30, 20)


def test_a_secret_is_160_random_bits() -> None:
    secrets = {otp.new_secret() for _ in range(50)}
    assert len(secrets) == 50
    for s in secrets:
        assert len(key_of(s)) == 20


def test_step_and_time_left() -> None:
    assert otp.step(59) == 1 and otp.valid_for(59) == 1
    assert otp.step(60) == 2 and otp.valid_for(60) == 30


def test_matching_steps_accepts_one_step_either_side_only() -> None:
    t = 1111111111
    code = otp.code_at(RFC_SECRET, t)
    assert otp.matching_steps(RFC_SECRET, code, t) == [otp.step(t)]
    assert otp.matching_steps(RFC_SECRET, code, t + 30) == [otp.step(t)]
    assert otp.matching_steps(RFC_SECRET, code, t - 30) == [otp.step(t)]
    assert otp.matching_steps(RFC_SECRET, code, t + 90) == []
    assert otp.matching_steps(RFC_SECRET, code[:3] + " " + code[3:], t) == [otp.step(t)]


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "abcdef", "１２３４５６", None])
def test_malformed_codes_match_nothing(typed: str) -> None:
    assert otp.matching_steps(RFC_SECRET, typed, 59) == []


def test_the_otpauth_uri_names_the_company_and_the_purpose_only() -> None:
    uri = otp.otpauth_uri(RFC_SECRET, "Example Shop")
    assert uri == (f"otpauth://totp/Example%20Shop%20calls:Check%20incoming%20calls"
                   f"?secret={RFC_SECRET}&issuer=Example%20Shop%20calls")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    issuer, label = unquote(parts.path[1:]).split(":")
    assert issuer == "Example Shop calls" and "incoming calls" in label
    query = parse_qs(parts.query)
    assert query == {"secret": [RFC_SECRET], "issuer": ["Example Shop calls"]}


def test_qr_outputs() -> None:
    uri = otp.otpauth_uri(RFC_SECRET, "Example Shop")
    assert otp.qr_png(uri).startswith(b"\x89PNG")
    assert b"<svg" in otp.qr_svg(uri)
    drawn = otp.qr_terminal(uri)
    assert re.search("[█▀▄]", drawn) and len(drawn.splitlines()) > 20
