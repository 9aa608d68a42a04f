"""Authenticator-app codes: TOTP (RFC 6238) over HOTP (RFC 4226), via ``pyotp``.

Parameters, fixed because every authenticator app supports them: HMAC-SHA-1, 6 digits, a 30 s
step from the Unix epoch, a 160-bit random secret of its own (never a login factor's). The
``otpauth://`` URI names the issuer "<Company> calls" and a label that says what it is for —
never a customer ref or anything personal. QR codes come from :mod:`callproof.qr`.

    >>> secret = new_secret()
    >>> code_at(secret, now)             # '492039'
    >>> matching_steps(secret, "492039", now)   # [step(now)]
    >>> valid_for(now)                   # seconds left in the current step
"""

from __future__ import annotations

import base64
import os
import secrets
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pyotp

from callproof import qr as qr_codes
from callproof.errors import InputError
from callproof.protocol.clock import to_epoch
from callproof.protocol.privacy import equal

ALGORITHM = "SHA1"
DIGITS = 6
PERIOD = 30  # seconds
SECRET_BYTES = 20  # 160 bits, RFC 4226's recommended length
WINDOW = 1  # steps either side accepted when confirming an enrolment
LABEL = "Check incoming calls"


def new_secret() -> str:
    """A fresh 160-bit secret, base32 (what authenticator apps take)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def step(at: datetime | int) -> int:
    """The RFC 6238 time step T = floor(unix time / 30)."""
    return (at if isinstance(at, int) else to_epoch(at)) // PERIOD


def valid_for(at: datetime | int) -> int:
    """Seconds left before the code of ``at`` is replaced (1–30)."""
    return PERIOD - (at if isinstance(at, int) else to_epoch(at)) % PERIOD


def hotp(secret: str, counter: int, *, digits: int = DIGITS) -> str:
    """RFC 4226 HOTP of a base32 secret."""
    return pyotp.HOTP(secret, digits=digits).at(counter)


def code_at(secret: str, at: datetime | int, *, digits: int = DIGITS) -> str:
    """RFC 6238 TOTP (SHA-1, 30 s) at ``at``."""
    return hotp(secret, step(at), digits=digits)


def matching_steps(secret: str, code: str, at: datetime | int, *,
                   window: int = WINDOW) -> list[int]:
    """The time steps within ±``window`` of ``at`` whose code is ``code`` (usually one or none).

    Every candidate is computed and compared in constant time, whatever matches."""
    typed = "".join(code.split()) if isinstance(code, str) else ""
    well_formed = len(typed) == DIGITS and typed.isascii() and typed.isdigit()
    now_step = step(at)
    found = [s for s in range(now_step - window, now_step + window + 1)
             if equal(hotp(secret, s), typed)]
    return found if well_formed else []


def otpauth_uri(secret: str, company: str) -> str:
    """``otpauth://totp/<Company>%20calls:<label>?secret=…&issuer=<Company>%20calls``."""
    issuer = f"{company} calls"
    return (f"otpauth://totp/{quote(issuer, safe='')}:{quote(LABEL, safe='')}"
            f"?secret={secret}&issuer={quote(issuer, safe='')}")


def qr_png(uri: str) -> bytes:
    """The URI as a PNG QR code (drawn by :mod:`callproof.qr`, as every QR code here is)."""
    return qr_codes.qr_png(uri, scale=8)


def qr_svg(uri: str) -> bytes:
    """The URI as an SVG QR code file (vector, no raster)."""
    return qr_codes.qr_svg(uri).encode("utf-8")


def qr_terminal(uri: str) -> str:
    """The URI as a QR code drawn with block characters, for a terminal."""
    return qr_codes.qr_terminal(uri)


def write_qr(uri: str, path: str | os.PathLike[str]) -> Path:
    """Write the QR code to ``path``: PNG or SVG by its suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".png":
        data = qr_png(uri)
    elif suffix == ".svg":
        data = qr_svg(uri)
    else:
        raise InputError("the QR file must end in .png or .svg", reason="bad_qr_format")
    path.write_bytes(data)
    return path
