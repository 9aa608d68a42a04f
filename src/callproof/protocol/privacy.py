"""Keyed hashes: how call codes, phone numbers, customer refs and clients are stored.

One 32-byte deployment secret (``CALLPROOF_HASH_KEY``, or ``secrets/hash.key`` in the data dir)
is expanded with HKDF-SHA256 into one HMAC key per purpose, so a leaked table of one kind says
nothing about another. Nothing here is reversible; the customer's phone keeps only a four-digit
hint in clear.

    >>> hk = HashKeys(os.urandom(32))
    >>> hk.code_hash("482917360")          # the key in the live-code table
    >>> hk.cdh("shop.example", jti, "482917360")   # the ticket's ``cdh`` claim
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from callproof.errors import ConfigError
from callproof.protocol.jws import b64url_encode

_PURPOSES = ("code", "cdh", "phone", "customer", "client", "voice-call")


def _derive(master: bytes, purpose: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"callproof-v1 " + purpose.encode("ascii"))
    return hkdf.derive(master)


class HashKeys:
    """The per-purpose HMAC keys. Its repr never shows a key."""

    __slots__ = ("_keys",)

    def __init__(self, master: bytes) -> None:
        if len(master) != 32:
            raise ConfigError("the hash key must be 32 bytes")
        self._keys = {p: _derive(master, p) for p in _PURPOSES}

    def __repr__(self) -> str:
        return "HashKeys(<hidden>)"

    def _mac(self, purpose: str, *parts: str) -> bytes:
        msg = b"\x00".join(p.encode("utf-8") for p in parts)
        return hmac.new(self._keys[purpose], msg, hashlib.sha256).digest()

    def code_hash(self, code: str) -> str:
        """Where a normalised 9-digit call code is stored: the live-code table's key."""
        return b64url_encode(self._mac("code", code))

    def cdh(self, issuer: str, jti: str, code: str) -> str:
        """The ``cdh`` claim: binds the call code to exactly this ticket of this issuer."""
        return b64url_encode(self._mac("cdh", "callproof-v1/cdh", issuer, jti, code))

    def phone_hash(self, issuer: str, e164: str) -> str:
        return b64url_encode(self._mac("phone", issuer, e164))

    def customer_hash(self, issuer: str, customer_ref: str) -> str:
        return b64url_encode(self._mac("customer", issuer, customer_ref))

    def voice_call_token(self, channel: str, call_id: str) -> str:
        """The claim token of a voice-platform call, derived from the platform's call id, so that
        nothing secret is kept between a webhook's requests (spec/voice-line.md §2). Sessions are
        signed with a secret of their own (``callproof.sealing.session_secret``), never with a
        key derived from the hash key."""
        return b64url_encode(self._mac("voice-call", "callproof-voice", channel, call_id))

    def client_hash(self, client: str) -> str:
        """A claim cookie value or a client address, as stored for comparison and counting."""
        return b64url_encode(self._mac("client", client))


def new_handle() -> str:
    """A random per-customer handle (the ``sub`` claim): 128 bits, URL-safe."""
    return "h_" + secrets.token_urlsafe(16)


def new_ticket_id() -> str:
    """A random ticket id (the ``jti`` claim): 128 bits, URL-safe."""
    return "t_" + secrets.token_urlsafe(16)


def equal(a: str, b: str) -> bool:
    """Constant-time comparison of two short texts."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
