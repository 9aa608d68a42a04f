"""Ticket signing keys: Ed25519 key pairs, their ids, statuses, the public and history JWKS.

A key's id is its RFC 7638 JWK thumbprint. Keys are ``active`` (signs and verifies),
``retired`` (verifies tickets it signed before retirement, until they expire) or ``revoked``
(verifies nothing live: a thief could backdate ``iat``). Rotation is "newest signs, all verify".

    >>> key = SigningKey.generate()
    >>> keyset = KeySet([TicketKey.active(key.public_jwk(), created_at=now)])
    >>> keyset.to_jwks(now)["keys"][0]["kid"] == key.kid
    True

The history JWKS (an export bundle's ``jwks.json``) lists every key the issuer ever had, with its
status and times: :meth:`KeySet.to_history_jwks` writes it, :meth:`KeySet.from_history_jwks`
reads it back.

Private keys are PEM (PKCS#8), encrypted with a passphrase unless the caller explicitly writes
a demo key without one; this module turns keys into PEM bytes and back, and
:mod:`callproof._files` reads and writes the files. The active ticket key's private half is kept
in the database, encrypted (ADR 0011); none enters the audit log.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from callproof.errors import CallproofError, ConfigError, InputError
from callproof.protocol.canonical import canonical_json
from callproof.protocol.clock import from_epoch, to_epoch
from callproof.protocol.events import MAX_EPOCH
from callproof.protocol.jws import b64url_decode, b64url_encode

ALG = "Ed25519"
ACTIVE, RETIRED, REVOKED = "active", "retired", "revoked"
STATUSES = (ACTIVE, RETIRED, REVOKED)
#: A key's times in a history JWKS (epoch seconds), in the order they are written.
HISTORY_TIMES = ("created_at", "retired_at", "revoked_at", "compromised_at")


def jwk_thumbprint(x: str) -> str:
    """RFC 7638 thumbprint of an OKP/Ed25519 public key given its ``x`` member."""
    required = {"crv": "Ed25519", "kty": "OKP", "x": x}
    return b64url_encode(hashlib.sha256(canonical_json(required)).digest())


def public_key_from_x(x: str) -> Ed25519PublicKey:
    try:
        raw = b64url_decode(x)
        if len(raw) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as e:
        raise InputError(f"not an Ed25519 public key: {e}", reason="bad_key") from e


class SigningKey:
    """An Ed25519 private key with its kid. Its repr shows the kid only."""

    __slots__ = ("_private", "kid", "x")

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.x = b64url_encode(raw)
        self.kid = jwk_thumbprint(self.x)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r})"

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    def public_jwk(self) -> dict[str, str]:
        return {"kty": "OKP", "crv": "Ed25519", "x": self.x, "kid": self.kid, "use": "sig",
                "alg": ALG}

    def to_pem(self, passphrase: bytes | None) -> bytes:
        """PKCS#8 PEM, encrypted with ``passphrase`` (the best scheme ``cryptography`` offers)."""
        return ed25519_to_pem(self._private, passphrase)

    @classmethod
    def from_pem(cls, pem: bytes, passphrase: bytes | None) -> SigningKey:
        """Load a PEM private key. Raises :class:`ConfigError` with a clear reason."""
        return cls(ed25519_from_pem(pem, passphrase, what="the signing key"))


def ed25519_to_pem(key: Ed25519PrivateKey, passphrase: bytes | None) -> bytes:
    """PKCS#8 PEM of an Ed25519 key, encrypted when a passphrase is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase
        else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             encryption)


def ed25519_from_pem(pem: bytes, passphrase: bytes | None, *, what: str) -> Ed25519PrivateKey:
    """Read an Ed25519 PEM key (ticket, log or witness key: ``what`` names it in errors).

    Raises :class:`ConfigError` saying whether the passphrase is missing, unexpected or wrong.
    """
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase or None)
    except TypeError as e:
        raise ConfigError(f"{what} is not encrypted but a passphrase is set" if passphrase
                          else f"{what} is encrypted: set CALLPROOF_KEY_PASSPHRASE") from e
    except ValueError as e:
        raise ConfigError(f"{what} could not be read (wrong passphrase?)") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{what} is not an Ed25519 key")
    return key


@dataclass(frozen=True)
class TicketKey:
    """A public ticket key with its status and the times that bound what it verifies."""

    kid: str
    x: str
    status: str
    created_at: datetime | None = None
    retired_at: datetime | None = None
    revoked_at: datetime | None = None
    compromised_at: datetime | None = None
    public_key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise InputError(f"unknown key status {self.status!r}", reason="bad_key")
        if jwk_thumbprint(self.x) != self.kid:
            raise InputError("the kid is not the key's RFC 7638 thumbprint", reason="bad_key")
        object.__setattr__(self, "public_key", public_key_from_x(self.x))

    @classmethod
    def active(cls, jwk: Mapping[str, Any], *, created_at: datetime | None = None) -> TicketKey:
        return cls(kid=jwk["kid"], x=jwk["x"], status=ACTIVE, created_at=created_at)

    def retire(self, at: datetime) -> TicketKey:
        return replace(self, status=RETIRED, retired_at=at)

    def revoke(self, at: datetime, compromised_at: datetime | None = None) -> TicketKey:
        return replace(self, status=REVOKED, revoked_at=at, compromised_at=compromised_at or at)

    def verifies_until(self, max_lifetime: timedelta, skew: timedelta) -> datetime | None:
        """Until when this key can still verify a live ticket (``None``: open-ended)."""
        if self.status == ACTIVE:
            return None
        if self.status == RETIRED and self.retired_at is not None:
            return self.retired_at + max_lifetime + skew
        return self.revoked_at  # revoked: nothing from then on

    def signature_is_valid(self, signature: bytes, data: bytes) -> bool:
        try:
            self.public_key.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def to_jwk(self) -> dict[str, str]:
        return {"kty": "OKP", "crv": "Ed25519", "x": self.x, "kid": self.kid, "use": "sig",
                "alg": ALG}

    def to_history_jwk(self) -> dict[str, Any]:
        """The public JWK with ``status`` and the times that are set (epoch seconds)."""
        jwk: dict[str, Any] = {**self.to_jwk(), "status": self.status}
        for name in HISTORY_TIMES:
            at = getattr(self, name)
            if at is not None:
                jwk[name] = to_epoch(at)
        return jwk

    @classmethod
    def from_history_jwk(cls, jwk: Any) -> TicketKey:
        """Read one key of a history JWKS. Raises ValueError, or :class:`InputError` for a key
        whose ``kid``, ``x`` or ``status`` is refused."""
        if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            raise ValueError("not an OKP/Ed25519 key")

        def at(name: str) -> datetime | None:
            v = jwk.get(name)
            if v is not None and not (type(v) is int and 0 <= v <= MAX_EPOCH):
                raise ValueError(f"{name} is not epoch seconds")
            return from_epoch(v) if v is not None else None

        return cls(kid=str(jwk.get("kid")), x=str(jwk.get("x")),
                   status=str(jwk.get("status", ACTIVE)), created_at=at("created_at"),
                   retired_at=at("retired_at"), revoked_at=at("revoked_at"),
                   compromised_at=at("compromised_at"))


@functools.lru_cache(maxsize=64)
def _jwks_key(kid: str, x: str) -> TicketKey:
    """One key of a public JWKS, by its exact ``kid`` and ``x``. Cached because
    ``verify_ticket(token, jwks)`` reads the JWKS on every call, and checking the thumbprint and
    building the Ed25519 key cost about 8 µs each time, 7 % of a verification. A refused key
    raises again each time (exceptions are not cached)."""
    return TicketKey(kid=kid, x=x, status=ACTIVE)


@dataclass(frozen=True)
class JwksProblem:
    """What :meth:`KeySet.from_history_jwks` refused: key ``index`` (from 1) and why, or, with
    no index, the whole document (not an object with a list of keys)."""

    index: int | None = None
    reason: str = ""

    def __str__(self) -> str:
        if self.index is None:
            return "not an object with a list of keys"
        return f"key {self.index} is refused: {self.reason}"


class KeySet(Mapping[str, TicketKey]):
    """The keys one issuer's tickets are checked against, by kid."""

    def __init__(self, keys: Iterable[TicketKey] = ()) -> None:
        self._keys = {k.kid: k for k in keys}

    def __getitem__(self, kid: str) -> TicketKey:
        return self._keys[kid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def find(self, kid: str) -> TicketKey | None:
        """The key with this kid, or None (what ``get`` does, without the Mapping detour)."""
        return self._keys.get(kid)

    def __repr__(self) -> str:
        return f"KeySet({[f'{k.kid}:{k.status}' for k in self._keys.values()]})"

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any]) -> KeySet:
        """Read a public JWKS: every listed Ed25519 key verifies (a JWKS lists no revoked key).

        Raises :class:`InputError` for a JWKS that is not a list of OKP/Ed25519 keys whose
        ``kid`` is their thumbprint.
        """
        entries = jwks.get("keys") if isinstance(jwks, Mapping) else None
        if not isinstance(entries, list):
            raise InputError("a JWKS is an object with a list of keys", reason="bad_key")
        keys = []
        for jwk in entries:
            if not isinstance(jwk, Mapping) or jwk.get("kty") != "OKP" or \
                    jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
                raise InputError("every key in the JWKS must be OKP/Ed25519", reason="bad_key")
            if jwk.get("alg", ALG) != ALG:
                raise InputError(f"key {jwk.get('kid')!r} is not for Ed25519", reason="bad_key")
            kid = jwk.get("kid") or jwk_thumbprint(jwk["x"])
            keys.append(_jwks_key(str(kid), jwk["x"]))
        return cls(keys)

    def to_jwks(self, now: datetime, *, max_lifetime: timedelta, skew: timedelta) -> dict[str, Any]:
        """The public JWKS: every key that still verifies a live ticket at ``now``."""
        listed = []
        for key in self._keys.values():
            until = key.verifies_until(max_lifetime, skew)
            if key.status != REVOKED and (until is None or now < until):
                listed.append(key.to_jwk())
        return {"keys": listed}

    def to_history_jwks(self) -> dict[str, Any]:
        """The history JWKS: every key, revoked ones too, in this set's order, each with its
        status and times (:meth:`TicketKey.to_history_jwk`)."""
        return {"keys": [key.to_history_jwk() for key in self._keys.values()]}

    @classmethod
    def from_history_jwks(cls, raw: Any) -> tuple[KeySet, list[JwksProblem]]:
        """Read a history JWKS (parsed JSON): the keys with their statuses and times, and what
        is wrong with it.

        Never raises for the input's sake. A key that cannot be read is left out with a
        :class:`JwksProblem` naming it (``key N is refused: <why>``, N counting from 1); input
        that is not an object with a list of keys gives no keys and one problem with no key
        (``not an object with a list of keys``). Of keys with the same kid the last one counts.
        """
        entries = raw.get("keys") if isinstance(raw, dict) else None
        if not isinstance(entries, list):
            return cls(), [JwksProblem()]
        keys: list[TicketKey] = []
        problems: list[JwksProblem] = []
        for i, jwk in enumerate(entries, 1):
            try:
                keys.append(TicketKey.from_history_jwk(jwk))
            except (ValueError, CallproofError) as e:
                problems.append(JwksProblem(i, str(e)))
        return cls(keys), problems
