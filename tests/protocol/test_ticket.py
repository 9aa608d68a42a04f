"""Tickets: encoding, verification rules that depend on key status and time, and interop."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jws, jwt
from joserfc.jwk import KeySet as JoseKeySet
from joserfc.jwk import OKPKey

from callproof import CallTicket, KeySet, SigningKey, TicketError, TicketKey, encode_ticket
from callproof import verify_ticket as verify
from callproof.errors import BadClaims, InputError
from callproof.protocol.canonical import canonical_json
from callproof.protocol.clock import to_epoch
from callproof.protocol.jws import b64url_decode, b64url_encode, sign_compact

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
KEY = SigningKey.generate()


def make(**changes: object) -> CallTicket:
    fields: dict[str, object] = dict(
        iss="shop.example", jti="t_abc123", iat=to_epoch(NOW), exp=to_epoch(NOW) + 900,
        agent_id="a-001", agent_name="Mei Lin", reason="payment_failed",
        cdh=b64url_encode(bytes(32)), department="Billing", subject="h_x", dst="5678")
    fields.update(changes)
    return CallTicket(**fields)  # type: ignore[arg-type]


def keyset(*keys: TicketKey) -> KeySet:
    return KeySet(keys or [TicketKey.active(KEY.public_jwk(), created_at=NOW)])


def outcome(token: str, keys: KeySet, **kw: object) -> str:
    with pytest.raises(TicketError) as caught:
        verify(token, keys, **kw)  # type: ignore[arg-type]
    return caught.value.outcome


def test_round_trip() -> None:
    ticket = make()
    assert verify(encode_ticket(ticket, KEY), keyset(), now=NOW) == ticket


def test_the_header_is_exactly_alg_kid_typ() -> None:
    header = json.loads(b64url_decode(encode_ticket(make(), KEY).split(".")[0]))
    assert header == {"alg": "Ed25519", "kid": KEY.kid, "typ": "callproof+jwt"}


def test_the_payload_is_canonical_json() -> None:
    token = encode_ticket(make(), KEY)
    payload = jws.extract_compact(token.encode()).payload
    assert payload == json.dumps(make().to_claims(), sort_keys=True, separators=(",", ":"),
                                 ensure_ascii=False).encode()


@pytest.mark.parametrize("offset,expected", [
    (timedelta(seconds=900 + 59), None),
    (timedelta(seconds=900 + 60), "expired"),
    (timedelta(seconds=-60), None),
    (timedelta(seconds=-61), "not_yet_valid"),
], ids=["expired-within-skew", "expired-beyond-skew", "early-within-skew", "early-beyond-skew"])
def test_clock_skew_is_sixty_seconds(offset: timedelta, expected: str | None) -> None:
    token = encode_ticket(make(), KEY)
    if expected is None:
        verify(token, keyset(), now=NOW + offset)
    else:
        assert outcome(token, keyset(), now=NOW + offset) == expected


def test_thirty_minutes_is_the_longest_life() -> None:
    verify(encode_ticket(make(exp=to_epoch(NOW) + 1800), KEY), keyset(), now=NOW)
    token = encode_ticket(make(exp=to_epoch(NOW) + 1801), KEY)
    assert outcome(token, keyset(), now=NOW) == "lifetime_too_long"


def test_a_revoked_key_verifies_nothing_even_backdated() -> None:
    revoked = TicketKey.active(KEY.public_jwk()).revoke(NOW, compromised_at=NOW)
    backdated = encode_ticket(make(iat=to_epoch(NOW) - 3600, exp=to_epoch(NOW) + 60), KEY)
    assert outcome(backdated, keyset(revoked), now=NOW) == "revoked"
    assert outcome(encode_ticket(make(), KEY), keyset(revoked), now=NOW) == "revoked"


def test_a_retired_key_verifies_its_tickets_but_signs_nothing_new() -> None:
    retired = TicketKey.active(KEY.public_jwk()).retire(NOW)
    before = encode_ticket(make(iat=to_epoch(NOW) - 30), KEY)
    verify(before, keyset(retired), now=NOW + timedelta(minutes=5))
    after = encode_ticket(make(iat=to_epoch(NOW) + 120, exp=to_epoch(NOW) + 900), KEY)
    assert outcome(after, keyset(retired), now=NOW + timedelta(minutes=3)) == "retired_key"


def test_wrong_issuer_is_refused_when_one_is_expected() -> None:
    token = encode_ticket(make(), KEY)
    assert outcome(token, keyset(), now=NOW, issuer="other.example") == "wrong_issuer"


def test_the_jwks_drops_revoked_keys_and_retired_keys_once_their_tickets_are_over() -> None:
    k2, k3 = SigningKey.generate(), SigningKey.generate()
    keys = keyset(TicketKey.active(KEY.public_jwk()).retire(NOW),
                  TicketKey.active(k2.public_jwk()),
                  TicketKey.active(k3.public_jwk()).revoke(NOW))
    limits = dict(max_lifetime=timedelta(minutes=30), skew=timedelta(seconds=60))
    listed = {k["kid"] for k in keys.to_jwks(NOW, **limits)["keys"]}
    assert listed == {KEY.kid, k2.kid}
    later = {k["kid"] for k in keys.to_jwks(NOW + timedelta(minutes=32), **limits)["keys"]}
    assert later == {k2.kid}


@pytest.mark.parametrize("jwks", [
    {}, {"keys": "no"}, {"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}]},
    {"keys": [{"kty": "OKP", "crv": "X25519", "x": "abc"}]},
    {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "short"}]},
    {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": KEY.x, "kid": "not-the-thumbprint"}]},
], ids=["empty", "not-a-list", "rsa", "x25519", "short-x", "wrong-kid"])
def test_a_bad_jwks_is_a_clear_error(jwks: dict[str, object]) -> None:
    from callproof import InputError

    with pytest.raises(InputError):
        verify(encode_ticket(make(), KEY), jwks, now=NOW)


def test_joserfc_verifies_our_ticket_against_our_jwks() -> None:
    token = encode_ticket(make(), KEY)
    jwks = keyset().to_jwks(NOW, max_lifetime=timedelta(minutes=30), skew=timedelta(seconds=60))
    jose_keys = JoseKeySet.import_key_set(jwks)  # type: ignore[arg-type]
    decoded = jwt.decode(token, jose_keys, algorithms=["Ed25519"])
    assert decoded.header == {"alg": "Ed25519", "kid": KEY.kid, "typ": "callproof+jwt"}
    assert decoded.claims == make().to_claims()


def test_we_verify_what_joserfc_signs() -> None:
    jwk = {**KEY.public_jwk()}
    private = OKPKey.import_key({**jwk, "d": b64url_encode(KEY._private.private_bytes_raw())})
    token = jwt.encode({"alg": "Ed25519", "kid": KEY.kid, "typ": "callproof+jwt"},
                       make().to_claims(), private, algorithms=["Ed25519"])
    assert verify(token, keyset(), now=NOW) == make()


_ident = st.from_regex(r"[A-Za-z0-9_.:@-]{1,64}", fullmatch=True)
_printable = st.characters(exclude_categories=("C", "Z"), include_characters=" ")


@given(iss=st.text(_printable, min_size=1, max_size=255), jti=_ident, agent=_ident,
       name=st.text(_printable, min_size=1, max_size=128), reason=_ident,
       dep=st.none() | st.text(_printable, min_size=1, max_size=128), sub=st.none() | _ident,
       dst=st.none() | st.from_regex(r"[0-9]{4}", fullmatch=True),
       life=st.integers(1, 1800), cdh=st.binary(min_size=32, max_size=32))
def test_any_well_formed_ticket_round_trips(iss: str, jti: str, agent: str, name: str,
                                            reason: str, dep: str | None, sub: str | None,
                                            dst: str | None, life: int, cdh: bytes) -> None:
    ticket = make(iss=iss, jti=jti, agent_id=agent, agent_name=name, reason=reason,
                  department=dep, subject=sub, dst=dst, exp=to_epoch(NOW) + life,
                  cdh=b64url_encode(cdh))
    assert verify(encode_ticket(ticket, KEY), keyset(), now=NOW) == ticket


@given(st.text(max_size=5000) | st.binary(max_size=5000))
def test_garbage_is_refused_with_an_outcome_never_a_crash(token: str | bytes) -> None:
    with pytest.raises(TicketError):
        verify(token, keyset(), now=NOW)


@given(st.integers(0, 300), st.integers(0, 7))
def test_any_single_bit_flip_in_a_ticket_is_refused(pos: int, bit: int) -> None:
    token = bytearray(encode_ticket(make(), KEY).encode())
    pos %= len(token)
    token[pos] ^= 1 << bit
    with pytest.raises(TicketError):
        verify(bytes(token), keyset(), now=NOW)


def signed_payload(payload: str) -> str:
    """A ticket whose payload is exactly ``payload``, properly signed by KEY."""
    header = canonical_json({"alg": "Ed25519", "kid": KEY.kid, "typ": "callproof+jwt"})
    return sign_compact(header, payload.encode(), KEY.sign)


@pytest.mark.parametrize("duplicate", [
    '"jti":"t_other"', '"\\u006a\\u0074\\u0069":"t_other"', '"agt":{"id":"a-002","name":"X"}',
], ids=["claim", "claim-spelled-with-escapes", "agt-again"])
def test_a_signed_payload_with_a_duplicate_claim_is_malformed(duplicate: str) -> None:
    payload = canonical_json(make().to_claims()).decode()
    assert outcome(signed_payload(payload[:-1] + "," + duplicate + "}"), keyset(),
                   now=NOW) == "malformed"


def test_a_duplicate_inside_agt_is_malformed() -> None:
    payload = canonical_json(make().to_claims()).decode()
    assert payload.startswith('{"agt":{"id":"a-001",')
    doubled = payload.replace('{"id":"a-001",', '{"id":"a-001","id":"a-002",', 1)
    assert outcome(signed_payload(doubled), keyset(), now=NOW) == "malformed"


def test_a_payload_with_colons_and_braces_in_its_strings_verifies() -> None:
    ticket = make(iss="https://shop.example:443", jti="t:1", agent_name="{Mei: Lin}",
                  reason="order:late", department="Care {east}")
    assert verify(encode_ticket(ticket, KEY), keyset(), now=NOW) == ticket


# jti, agt.id, rsn and cdh as the spec shapes them (§3.1), and strings made to look like two of
# them joined by a comma.
_SHAPES = {"jti": r"[A-Za-z0-9_.:@-]{1,64}", "agt.id": r"[A-Za-z0-9_.:@-]{1,64}",
           "rsn": r"[A-Za-z0-9_.:@-]{1,64}", "cdh": r"[A-Za-z0-9_-]{43}"}
_cdh = st.binary(min_size=32, max_size=32).map(b64url_encode)
_near = (st.from_regex(r"[A-Za-z0-9_.:@,-]{0,70}", fullmatch=True)
         | st.lists(_ident | _cdh, min_size=2, max_size=3).map(",".join)
         | st.integers() | st.none())


@given(jti=_ident | _near, agt_id=_ident | _near, rsn=_ident | _near, cdh=_cdh | _near)
def test_jti_agt_id_rsn_and_cdh_are_each_checked_against_their_shape(
        jti: Any, agt_id: Any, rsn: Any, cdh: Any) -> None:
    claims = make().to_claims()
    claims.update(jti=jti, rsn=rsn, cdh=cdh, agt={"id": agt_id, "name": "Mei Lin"})
    values = {"jti": jti, "agt.id": agt_id, "rsn": rsn, "cdh": cdh}
    wrong = [name for name, value in values.items()
             if not (type(value) is str and re.fullmatch(_SHAPES[name], value))]
    if not wrong:
        ticket = CallTicket.from_claims(claims)
        assert (ticket.jti, ticket.agent_id, ticket.reason, ticket.cdh) == (jti, agt_id, rsn, cdh)
        return
    with pytest.raises(BadClaims, match=f"the claim '{wrong[0]}' has"):
        CallTicket.from_claims(claims)


def test_a_cached_jwks_key_lets_no_wrong_kid_through() -> None:
    good = {"keys": [KEY.public_jwk()]}
    bad = {"keys": [{**KEY.public_jwk(), "kid": "not-the-thumbprint"}]}
    for _ in range(2):
        assert verify(encode_ticket(make(), KEY), good, now=NOW) == make()
        with pytest.raises(InputError):
            verify(encode_ticket(make(), KEY), bad, now=NOW)
