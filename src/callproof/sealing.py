"""Sealing: the enrolled secrets and phrases, encrypted at rest (AES-256-GCM); and the web app's
session secret (:func:`session_secret`), kept apart from every other key.

The seal key is 32 bytes: ``CALLPROOF_SEAL_KEY`` (base64url) in production; in demo mode (no
``CALLPROOF_KEY_PASSPHRASE`` either) a file ``<data dir>/secrets/seal.key`` (mode 0600) that
``callproof init`` creates with a warning. Each blob is ``0x01 || 96-bit random nonce ||
ciphertext+tag``, sealed with the issuer, the customer handle and a purpose label ("totp",
"phrase") as associated data: a blob copied to another customer, another purpose or another
issuer does not open.

    >>> sealer = Sealer.from_data_dir(dep.data_dir)
    >>> blob = sealer.seal(b"JBSWY3DP...", issuer="shop.example", handle=h, purpose="totp")
    >>> sealer.open(blob, issuer="shop.example", handle=h, purpose="totp")
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select

from callproof._files import write_private
from callproof.config import DataDir, passphrase
from callproof.errors import ConfigError, SealError
from callproof.protocol.clock import to_epoch
from callproof.protocol.keys import ed25519_from_pem, ed25519_to_pem
from callproof.store import schema

if TYPE_CHECKING:
    from callproof.deployment import Deployment

ENV = "CALLPROOF_SEAL_KEY"
_VERSION = b"\x01"
_NONCE = 12  # 96 bits, the GCM nonce size; random per blob
_AD_PREFIX = b"callproof-v1 seal"


def seal_key_file(data_dir: DataDir) -> Path:
    return data_dir.path / "secrets" / "seal.key"


def _associated_data(issuer: str, handle: str, purpose: str) -> bytes:
    return b"\x00".join([_AD_PREFIX, *(p.encode("utf-8") for p in (issuer, handle, purpose))])


class Sealer:
    """AES-256-GCM under the seal key. Its repr never shows the key."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise SealError("the seal key must be 32 bytes (base64url in CALLPROOF_SEAL_KEY)")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "Sealer(<hidden>)"

    @classmethod
    def from_data_dir(cls, data_dir: DataDir) -> Sealer:
        """The key from CALLPROOF_SEAL_KEY, else from the demo file in the data dir."""
        env = os.environ.get(ENV)
        if env:
            try:
                key = base64.urlsafe_b64decode(env + "=" * (-len(env) % 4))
            except (binascii.Error, ValueError) as e:
                raise SealError(f"{ENV} is not base64url") from e
            if len(key) != 32:
                raise SealError(f"{ENV} must be the base64url of 32 bytes")
            return cls(key)
        path = seal_key_file(data_dir)
        try:
            key = path.read_bytes()
        except OSError:
            raise SealError(f"no seal key: set {ENV} (base64url of 32 bytes), or run "
                            "`callproof init` for a demo key file") from None
        if len(key) != 32:
            raise SealError(f"{path} must hold 32 bytes")
        return cls(key)

    def seal(self, plaintext: bytes, *, issuer: str, handle: str, purpose: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return _VERSION + nonce + self._aead.encrypt(
            nonce, plaintext, _associated_data(issuer, handle, purpose))

    def open(self, blob: bytes, *, issuer: str, handle: str, purpose: str) -> bytes:
        """The plaintext. Raises :class:`SealError` (naming no secret) if it does not open."""
        blob = bytes(blob)
        if len(blob) < 1 + _NONCE + 16 or blob[:1] != _VERSION:
            raise SealError("a sealed value is malformed")
        try:
            return self._aead.decrypt(blob[1:1 + _NONCE], blob[1 + _NONCE:],
                                      _associated_data(issuer, handle, purpose))
        except InvalidTag:
            raise SealError("a sealed value does not open: the seal key is wrong "
                            f"({ENV} or secrets/seal.key), or it belongs to another "
                            "customer") from None


def create_demo_seal_key(data_dir: DataDir) -> str | None:
    """For ``callproof init`` in demo mode (no CALLPROOF_KEY_PASSPHRASE, so signing keys are
    unencrypted too): write secrets/seal.key unless CALLPROOF_SEAL_KEY is set or the file
    exists. Returns the warning to print when it wrote one, else None. Outside demo mode the
    seal key must come from CALLPROOF_SEAL_KEY."""
    path = seal_key_file(data_dir)
    if os.environ.get(ENV) or passphrase() is not None or path.exists():
        return None
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(path, os.urandom(32))
    return (f"{ENV} is not set: enrolled app secrets and phrases are sealed with a key kept "
            "in the data dir (secrets/seal.key). Fine for a demo, never for real customers.")


# --- the web app's session secret (hardening issue 13 item 7) ---------------------------------

#: The session-signing secret from the environment (base64url, at least 32 bytes), for
#: deployments that keep every secret outside the data dir and the database.
SESSION_ENV = "CALLPROOF_SESSION_SECRET"
_SESSION = "session"
_SESSION_INFO = b"callproof-v1 session cookie"


def session_secret(dep: Deployment) -> bytes:
    """The key the web app signs its session cookie with: one secret for this one purpose.

    ``CALLPROOF_SESSION_SECRET`` when set; else the deployment's ``session`` secret in the
    database (``app_secrets``), an Ed25519 PKCS#8 PEM encrypted under CALLPROOF_KEY_PASSPHRASE
    like the signing keys, made on first use (an older data dir gets one on its next start or
    ``init``; every instance then reads the same one). The secret is an HKDF-SHA256 of the key's
    private bytes. Neither the hash key nor any other file of the data dir gives it.

    Raises :class:`ConfigError` when the variable is not base64url of 32+ bytes, or the stored
    key does not open with the passphrase set here.
    """
    env = os.environ.get(SESSION_ENV)
    if env:
        try:
            raw = base64.urlsafe_b64decode(env + "=" * (-len(env) % 4))
        except (binascii.Error, ValueError):
            raise ConfigError(f"{SESSION_ENV} is not base64url") from None
        if len(raw) < 32:
            raise ConfigError(f"{SESSION_ENV} must be the base64url of 32 bytes or more")
        return _session_key(raw)
    t = schema.app_secrets
    with dep.store.write() as conn:
        pem = conn.execute(select(t.c.pem).where(t.c.issuer_id == dep.issuer_id,
                                                 t.c.name == _SESSION)).scalar()
        if pem is None:
            new = ed25519_to_pem(Ed25519PrivateKey.generate(), passphrase()).decode("ascii")
            dep.store.insert_if_absent(conn, t, {"issuer_id": dep.issuer_id, "name": _SESSION,
                                                 "pem": new,
                                                 "created_at": to_epoch(dep.now())})
            pem = conn.execute(select(t.c.pem).where(t.c.issuer_id == dep.issuer_id,
                                                     t.c.name == _SESSION)).scalar_one()
    key = ed25519_from_pem(pem.encode("ascii"), passphrase(), what="the session secret")
    return _session_key(key.private_bytes_raw())


def session_secret_missing(dep: Deployment) -> bool:
    """Whether the deployment has no session secret in its database yet."""
    t = schema.app_secrets
    with dep.store.read() as conn:
        return conn.execute(select(t.c.name).where(t.c.issuer_id == dep.issuer_id,
                                                   t.c.name == _SESSION)).first() is None


def _session_key(material: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=_SESSION_INFO).derive(material)
