"""Files the library writes and reads with care: written whole or not at all (checkpoints, a
witness's state), private files created 0600 and never over an existing one, and the PEM key
files (ticket, log and witness keys; :mod:`callproof.protocol.keys` does the PEM itself).

    >>> key = create_key_file(path, passphrase)          # a new Ed25519 key, 0600
    >>> write_private(path, signing_key.to_pem(passphrase))
    >>> key = read_private_key(path, passphrase, what="the log key",
    ...                        missing=f"the audit log key {path} is missing: run `callproof init`")
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from callproof.errors import ConfigError
from callproof.protocol.keys import ed25519_from_pem, ed25519_to_pem

__all__ = ["create_key_file", "read_private_key", "write_atomic", "write_private"]


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically: a temporary file, fsync, rename, fsync of the
    directory. Safe from several threads and processes at once (each has its own temp name)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` (a key or a secret) to a new file readable by its owner only (0600);
    never over an existing file (FileExistsError)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def create_key_file(path: Path, passphrase: bytes | None) -> Ed25519PrivateKey:
    """A new Ed25519 key, written to ``path`` (PKCS#8 PEM, encrypted when a passphrase is given;
    0600, never over a file; the directory is made 0700 when missing)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    write_private(path, ed25519_to_pem(key, passphrase))
    return key


def read_private_key(path: Path, passphrase: bytes | None, *, what: str,
                     missing: str) -> Ed25519PrivateKey:
    """The Ed25519 private key in the PEM file ``path``.

    Raises :class:`ConfigError`: ``missing`` when the file cannot be read; otherwise why the
    PEM does not open (:func:`~callproof.protocol.keys.ed25519_from_pem`, ``what`` names the
    key).
    """
    try:
        pem = path.read_bytes()
    except OSError as e:
        raise ConfigError(missing) from e
    return ed25519_from_pem(pem, passphrase, what=what)
