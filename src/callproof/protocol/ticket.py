"""Call tickets: the signed statement "this company is calling this number now, about this".

A ticket is a compact JWS (RFC 7515) with the protected header exactly
``{"alg":"Ed25519","kid":…,"typ":"callproof+jwt"}`` (RFC 9864 names the algorithm) over the RFC
8785 canonical bytes of its claims. :func:`verify_ticket` follows spec/callproof-v1.md §5 step by
step; each failed step raises its own :class:`~callproof.errors.TicketError`.

    >>> token = encode_ticket(ticket, signing_key)
    >>> verify_ticket(token, keyset, now=now).jti == ticket.jti
    True
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NoReturn

from callproof import errors as E
from callproof.protocol.canonical import canonical_json, parse_json_strict
from callproof.protocol.clock import SystemClock, to_epoch
from callproof.protocol.jws import b64url_decode, sign_compact, split_compact
from callproof.protocol.keys import ALG, RETIRED, REVOKED, KeySet, SigningKey

TYP = "callproof+jwt"
#: Tickets live 15 minutes unless the issuer asks otherwise, and never over 30 (spec §3).
DEFAULT_LIFETIME = timedelta(minutes=15)
MAX_LIFETIME = timedelta(minutes=30)
#: Clock skew tolerated on ``iat`` and ``exp``.
CLOCK_SKEW = timedelta(seconds=60)
_MAX_LIFETIME_S = int(MAX_LIFETIME.total_seconds())

_TEXT_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
_B64_32 = re.compile(r"[A-Za-z0-9_-]{43}")
_HINT = re.compile(r"[0-9]{4}")
# jti, agt.id, rsn and cdh joined by ","; no claim's own pattern allows "," (see from_claims).
_JTI_AGT_RSN_CDH = re.compile(rf"(?:{_TEXT_ID.pattern},){{3}}{_B64_32.pattern}")
_HEADER_KEYS = frozenset(("alg", "kid", "typ"))


@dataclass(frozen=True)
class CallTicket:
    """The claims of one call ticket (spec §3). ``to_claims`` gives the JSON members."""

    iss: str
    jti: str
    iat: int
    exp: int
    agent_id: str
    agent_name: str
    reason: str
    cdh: str
    methods: tuple[str, ...] = ("code",)
    department: str | None = None
    subject: str | None = None
    dst: str | None = None
    kid: str | None = field(default=None, compare=False)

    def to_claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": self.iss, "jti": self.jti, "iat": self.iat, "exp": self.exp,
            "agt": {"id": self.agent_id, "name": self.agent_name},
            "rsn": self.reason, "mth": list(self.methods), "cdh": self.cdh,
        }
        if self.department is not None:
            claims["dep"] = self.department
        if self.subject is not None:
            claims["sub"] = self.subject
        if self.dst is not None:
            claims["dst"] = self.dst
        return claims

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any], kid: str | None = None) -> CallTicket:
        """Check every claim's presence, type and shape (spec §3.1); raises :class:`BadClaims`.

        Claims not named in the spec are ignored (ADR 0008).
        """
        c = claims
        try:
            iss, jti, iat, exp, agt = c["iss"], c["jti"], c["iat"], c["exp"], c["agt"]
            rsn, cdh, mth = c["rsn"], c["cdh"], c["mth"]
        except KeyError as e:
            raise E.BadClaims(f"the claim {e.args[0]!r} is missing") from e
        dep, sub, dst = c.get("dep", _ABSENT), c.get("sub", _ABSENT), c.get("dst", _ABSENT)
        ident = _TEXT_ID.fullmatch
        # Four of the shape checks below in one regex call when they all hold: each call costs
        # about 0.2 µs, more than the rest of its check, and verify_ticket is hot. The joined
        # text has exactly the pattern's three "," only when no claim holds one of its own, and
        # then its four parts are the four claims; otherwise the checks one by one name the
        # claim that is wrong.
        agt_id = agt.get("id") if type(agt) is dict else None
        shapes_ok = (type(jti) is str and type(agt_id) is str and type(rsn) is str and
                     type(cdh) is str and
                     _JTI_AGT_RSN_CDH.fullmatch(f"{jti},{agt_id},{rsn},{cdh}") is not None)
        if not (type(iss) is str and 0 < len(iss) <= 255 and iss.isprintable()):
            _bad("iss")
        if not (shapes_ok or type(jti) is str and ident(jti)):
            _bad("jti")
        # bool is an int in Python but not a NumericDate, hence type() rather than isinstance.
        if not (type(iat) is int and 0 <= iat < _MAX_SECONDS):
            _bad("iat")
        if not (type(exp) is int and 0 <= exp < _MAX_SECONDS):
            _bad("exp")
        if exp <= iat:
            raise E.BadClaims("exp is not after iat")
        if not (shapes_ok or type(agt_id) is str and ident(agt_id)):
            _bad("agt.id")
        name: Any = agt.get("name")
        if not (type(name) is str and 0 < len(name) <= 128 and name.isprintable()):
            _bad("agt.name")
        if not (shapes_ok or type(rsn) is str and ident(rsn)):
            _bad("rsn")
        if not (shapes_ok or type(cdh) is str and _B64_32.fullmatch(cdh)):
            _bad("cdh")
        if not (type(mth) is list and 0 < len(mth) <= 8):
            _bad("mth")
        for m in mth:  # a loop, not all(<generator>): half the time for the usual one method
            if not (type(m) is str and ident(m)):
                _bad("mth")
        if dep is not _ABSENT and not (type(dep) is str and 0 < len(dep) <= 128 and
                                       dep.isprintable()):
            _bad("dep")
        if sub is not _ABSENT and not (type(sub) is str and ident(sub)):
            _bad("sub")
        if dst is not _ABSENT and not (type(dst) is str and _HINT.fullmatch(dst)):
            _bad("dst")
        # Every field is checked above, so fill the frozen instance directly: the generated
        # __init__ would spend more time here than all the checks together (verify_ticket is hot).
        ticket: CallTicket = object.__new__(cls)
        ticket.__dict__.update(
            iss=iss, jti=jti, iat=iat, exp=exp, agent_id=agt_id, agent_name=name,
            reason=rsn, cdh=cdh, methods=tuple(mth), department=None if dep is _ABSENT else dep,
            subject=None if sub is _ABSENT else sub, dst=None if dst is _ABSENT else dst, kid=kid)
        return ticket


_ABSENT: Any = object()
_MAX_SECONDS = 2**53


def _bad(name: str) -> NoReturn:
    raise E.BadClaims(f"the claim {name!r} has the wrong type or shape")


def encode_ticket(ticket: CallTicket, key: SigningKey) -> str:
    """Sign ``ticket`` with ``key`` as a compact JWS (the header names ``key.kid``)."""
    return sign_compact(_header_bytes(key.kid), canonical_json(ticket.to_claims()), key.sign)


@functools.lru_cache(maxsize=16)
def _header_bytes(kid: str) -> bytes:
    """The protected header of every ticket one key signs (the same bytes each time)."""
    return canonical_json({"alg": ALG, "kid": kid, "typ": TYP})


# Decoded protected headers by their exact base64url text. An issuer uses one header per key,
# so this turns a JSON parse per ticket into a dict lookup; it caches pure facts of the bytes.
_HEADER_CACHE: dict[str, str] = {}
_HEADER_CACHE_MAX = 64


def _read_header(header_b64: str) -> str:
    """Spec §5 steps 2–4: the header is exactly alg, kid, typ with the right values. Returns kid."""
    kid = _HEADER_CACHE.get(header_b64)
    if kid is not None:
        return kid
    try:
        header = parse_json_strict(b64url_decode(header_b64))
    except (ValueError, UnicodeDecodeError) as e:
        raise E.MalformedTicket("the header is not a base64url JSON object") from e
    if not isinstance(header, dict):
        raise E.MalformedTicket("the header is not a JSON object")
    if "crit" in header:
        raise E.BadHeader("the header has crit: no extension is understood")
    if header.get("alg") != ALG:
        raise E.BadAlgorithm(f"alg must be exactly {ALG!r}")
    if header.get("typ") != TYP:
        raise E.BadType(f"typ must be exactly {TYP!r}")
    if set(header) != _HEADER_KEYS or not isinstance(header["kid"], str):
        raise E.BadHeader("the header must hold exactly alg, kid and typ")
    if len(_HEADER_CACHE) >= _HEADER_CACHE_MAX:
        _HEADER_CACHE.clear()
    _HEADER_CACHE[header_b64] = header["kid"]
    return str(header["kid"])


def verify_ticket(
    token: str | bytes,
    keys: KeySet | Mapping[str, Any],
    *,
    now: datetime | None = None,
    issuer: str | None = None,
    skew: timedelta = CLOCK_SKEW,
) -> CallTicket:
    """Verify a call ticket and return its claims (spec/callproof-v1.md §5).

    ``keys`` is a :class:`KeySet` (with statuses) or a public JWKS dict. ``now`` defaults to the
    system clock. Raises a subclass of :class:`~callproof.errors.TicketError` naming the failed
    step: ``too_large``/``malformed``, ``bad_header``, ``bad_algorithm``, ``bad_type``,
    ``unknown_key``, ``revoked``, ``bad_signature``, ``bad_claims``, ``wrong_issuer``,
    ``retired_key``, ``not_yet_valid``, ``expired``, ``lifetime_too_long``.
    """
    keyset = keys if isinstance(keys, KeySet) else KeySet.from_jwks(keys)
    # Step 1: size and shape.
    header_b64, payload_b64, signature = split_compact(token)
    # Steps 2-4: the protected header.
    kid = _read_header(header_b64)
    # Step 5: the key.
    key = keyset.find(kid)
    if key is None:
        raise E.UnknownKey("no key with this kid", kid=kid)
    if key.status == REVOKED:
        raise E.RevokedKey("the key that signed this ticket was revoked", kid=kid)
    # Step 6: the signature, over the ASCII signing input exactly as received.
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    if not key.signature_is_valid(signature, signing_input):
        raise E.BadSignature("the signature does not verify", kid=kid)
    # Step 7: the claims.
    try:
        claims = parse_json_strict(b64url_decode(payload_b64))
    except (ValueError, UnicodeDecodeError) as e:
        raise E.MalformedTicket("the payload is not a base64url JSON object", kid=kid) from e
    if not isinstance(claims, dict):
        raise E.MalformedTicket("the payload is not a JSON object", kid=kid)
    ticket = CallTicket.from_claims(claims, kid=kid)
    # Step 8: the issuer.
    if issuer is not None and ticket.iss != issuer:
        raise E.WrongIssuer(f"issued by {ticket.iss!r}, not {issuer!r}", kid=kid,
                            ticket_id=ticket.jti)
    # Step 9: time.
    at = now if now is not None else SystemClock().now()
    if at.tzinfo is None:
        raise ValueError("now must be an aware UTC datetime")
    t = int(at.timestamp())
    s = skew.seconds + skew.days * 86400
    if ticket.exp - ticket.iat > _MAX_LIFETIME_S:
        raise E.LifetimeTooLong("the ticket lives longer than 30 minutes", kid=kid,
                                ticket_id=ticket.jti)
    if ticket.iat > t + s:
        raise E.NotYetValid("the ticket is issued in the future", kid=kid, ticket_id=ticket.jti)
    if t >= ticket.exp + s:
        raise E.Expired("the ticket has expired", kid=kid, ticket_id=ticket.jti)
    # Step 10: a retired key signs nothing new.
    if key.status == RETIRED and key.retired_at is not None and \
            ticket.iat > to_epoch(key.retired_at) + s:
        raise E.RetiredKey("signed after its key was retired", kid=kid, ticket_id=ticket.jti)
    return ticket
