"""Ticket signing keys: Ed25519 key pairs, their ids, statuses and the public JWKS.

A key's id is its RFC 7638 JWK thumbprint. Keys are ``active`` (signs and verifies),
``retired`` (verifies tickets it signed before retirement, until they expire) or ``revoked``
(verifies nothing live: a thief could backdate ``iat``). Rotation is "newest signs, all verify".

    >>> key = SigningKey.generate()
    >>> keyset = KeySet([TicketKey.active(key.public_jwk(), created_at=now)])
    >>> keyset.to_jwks(now)["keys"][0]["kid"] == key.kid
    True

Private keys are PEM files (PKCS#8), encrypted with a passphrase unless the caller explicitly
writes a demo key without one. They never enter the database or the audit log.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from callproof.errors import ConfigError, InputError
from callproof.protocol.canonical import canonical_json
from callproof.protocol.jws import b64url_decode, b64url_encode

ALG = "Ed25519"
ACTIVE, RETIRED, REVOKED = "active", "retired", "revoked"
STATUSES = (ACTIVE, RETIRED, REVOKED)


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

    def write_pem(self, path: Path, passphrase: bytes | None) -> None:
        """Write the key to ``path`` readable by its owner only, never over an existing file."""
        write_private_pem(path, self._private, passphrase)


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


def write_private_pem(path: Path, key: Ed25519PrivateKey, passphrase: bytes | None) -> None:
    """Write a private key readable by its owner only (0600), never over an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(ed25519_to_pem(key, passphrase))


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
            keys.append(TicketKey(kid=str(kid), x=jwk["x"], status=ACTIVE))
        return cls(keys)

    def to_jwks(self, now: datetime, *, max_lifetime: timedelta, skew: timedelta) -> dict[str, Any]:
        """The public JWKS: every key that still verifies a live ticket at ``now``."""
        listed = []
        for key in self._keys.values():
            until = key.verifies_until(max_lifetime, skew)
            if key.status != REVOKED and (until is None or now < until):
                listed.append(key.to_jwk())
        return {"keys": listed}
