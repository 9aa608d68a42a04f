"""Writes spec/vectors/tickets.json: callproof v1 tickets from a fixed key, valid and not.

Ed25519 is deterministic, so this script always writes the same file; tests/protocol/test_vectors.py
checks that it still does and replays every case. The key is RFC 8037 appendix A's (the
RFC 8032 §7.1 test 1 key) — public test material, never for real use.

    python spec/vectors/generate_tickets.py > spec/vectors/tickets.json
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from callproof.protocol.canonical import canonical_json
from callproof.protocol.jws import b64url_decode, b64url_encode, sign_compact
from callproof.protocol.keys import SigningKey

D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
NOW = 1795427400  # 2026-11-23T09:30:00Z
KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(b64url_decode(D)))
OTHER = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))

CLAIMS: dict[str, Any] = {
    "iss": "shop.example", "jti": "t_8kQm2xVbR0yN4pLc7sJd1A", "iat": NOW - 120,
    "exp": NOW - 120 + 900, "agt": {"id": "a-001", "name": "Mei Lin"},
    "dep": "Customer Care", "rsn": "payment_failed", "sub": "h_Zp3s9QWmYc2Kx7TgBv5n0Q",
    "dst": "5678", "mth": ["code"], "cdh": b64url_encode(bytes(range(32))),
}
HEADER = {"alg": "Ed25519", "kid": KEY.kid, "typ": "callproof+jwt"}


def token(header: Any = HEADER, claims: Any = CLAIMS, key: SigningKey = KEY,
          raw_header: bytes | None = None, raw_claims: bytes | None = None) -> str:
    h = raw_header if raw_header is not None else canonical_json(header)
    c = raw_claims if raw_claims is not None else canonical_json(claims)
    return sign_compact(h, c, key.sign)


def with_claims(**changes: Any) -> dict[str, Any]:
    claims = {**CLAIMS, **changes}
    return {k: v for k, v in claims.items() if v is not None}


def flip_last_signature_char(t: str) -> str:
    head, sig = t.rsplit(".", 1)
    raw = bytearray(b64url_decode(sig))
    raw[0] ^= 1
    return head + "." + b64url_encode(bytes(raw))


def build() -> dict[str, Any]:
    good = token()
    h, p, s = good.split(".")
    other_payload = b64url_encode(canonical_json(with_claims(dst="0000")))
    no_dep = with_claims(dep=None, sub=None, dst=None)
    invalid = [
        ("alg-none-unsigned", f"{b64url_encode(canonical_json({**HEADER, 'alg': 'none'}))}.{p}.",
         "malformed"),
        ("alg-none", token({**HEADER, "alg": "none"}), "bad_algorithm"),
        ("alg-EdDSA", token({**HEADER, "alg": "EdDSA"}), "bad_algorithm"),
        ("alg-HS256", token({**HEADER, "alg": "HS256"}), "bad_algorithm"),
        ("alg-lowercase", token({**HEADER, "alg": "ed25519"}), "bad_algorithm"),
        ("typ-JWT", token({**HEADER, "typ": "JWT"}), "bad_type"),
        ("typ-uppercase", token({**HEADER, "typ": "CALLPROOF+JWT"}), "bad_type"),
        ("typ-missing", token({"alg": "Ed25519", "kid": KEY.kid}), "bad_type"),
        ("crit", token({**HEADER, "crit": ["exp"]}), "bad_header"),
        ("extra-header-jku", token({**HEADER, "jku": "https://evil.example/jwks"}), "bad_header"),
        ("kid-not-string", token({**HEADER, "kid": 7}), "bad_header"),
        ("header-duplicate-alg", token(raw_header=b'{"alg":"none","alg":"Ed25519","kid":"'
                                       + KEY.kid.encode() + b'","typ":"callproof+jwt"}'),
         "malformed"),
        ("unknown-kid", token({**HEADER, "kid": OTHER.kid}, key=OTHER), "unknown_key"),
        ("signed-by-other-key", token(key=OTHER), "bad_signature"),
        ("signature-bit-flipped", flip_last_signature_char(good), "bad_signature"),
        ("payload-swapped", f"{h}.{other_payload}.{s}", "bad_signature"),
        ("expired", token(claims=with_claims(iat=NOW - 1000, exp=NOW - 61)), "expired"),
        ("issued-in-future", token(claims=with_claims(iat=NOW + 61, exp=NOW + 900)),
         "not_yet_valid"),
        ("lifetime-31-minutes", token(claims=with_claims(iat=NOW, exp=NOW + 1860)),
         "lifetime_too_long"),
        ("exp-before-iat", token(claims=with_claims(exp=NOW - 121)), "bad_claims"),
        ("missing-cdh", token(claims=with_claims(cdh=None)), "bad_claims"),
        ("missing-agt", token(claims=with_claims(agt=None)), "bad_claims"),
        ("iat-string", token(claims=with_claims(iat=str(NOW))), "bad_claims"),
        ("iat-boolean", token(claims=with_claims(iat=True)), "bad_claims"),
        ("exp-float", token(claims=with_claims(exp=NOW + 600.5)), "bad_claims"),
        ("dst-five-digits", token(claims=with_claims(dst="45678")), "bad_claims"),
        ("mth-empty", token(claims=with_claims(mth=[])), "bad_claims"),
        ("agt-name-empty", token(claims=with_claims(agt={"id": "a-001", "name": ""})),
         "bad_claims"),
        ("payload-array", token(raw_claims=b"[1,2,3]"), "malformed"),
        ("payload-not-json", token(raw_claims=b"not json"), "malformed"),
        ("payload-duplicate-claim", token(raw_claims=canonical_json(CLAIMS)[:-1]
                                          + b',"iss":"evil.example"}'), "malformed"),
        ("two-parts", f"{h}.{p}", "malformed"),
        ("padded-base64", f"{h}=.{p}.{s}", "malformed"),
        ("standard-base64-alphabet", good.replace("-", "+").replace("_", "/")
         if ("-" in good or "_" in good) else good + "+", "malformed"),
        ("too-large", token(claims=with_claims(dep="x" * 100, pad="y" * 3200)), "too_large"),
    ]
    return {
        "about": "callproof v1 ticket vectors; generated by generate_tickets.py from the RFC 8037 "
                 "appendix A key. 'now' is the verification time (epoch seconds); every valid "
                 "token verifies at 'now' against 'jwks' with 60 s skew, every invalid one fails "
                 "with 'outcome'.",
        "now": NOW,
        "private_jwk": {**KEY.public_jwk(), "d": D},
        "jwks": {"keys": [KEY.public_jwk()]},
        "valid": [
            {"name": "full", "token": good, "claims": CLAIMS},
            {"name": "no-customer-no-number", "token": token(claims=no_dep), "claims": no_dep},
            {"name": "expired-within-skew",
             "token": token(claims=with_claims(iat=NOW - 959, exp=NOW - 59)),
             "claims": with_claims(iat=NOW - 959, exp=NOW - 59)},
            {"name": "unknown-claim-ignored", "token": token(claims=with_claims(xyz=1)),
             "claims": with_claims(xyz=1)},
        ],
        "invalid": [{"name": n, "token": t, "outcome": o} for n, t, o in invalid],
    }


if __name__ == "__main__":
    print(json.dumps(build(), indent=2, ensure_ascii=False))
