"""RFC 4226 / RFC 6238 computed by hand with hmac and hashlib: the independent check on pyotp."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct


def hotp(key: bytes, counter: int, digits: int = 6) -> str:
    """RFC 4226 §5.3: HMAC-SHA-1, dynamic truncation, modulo 10^digits."""
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    binary = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(binary % 10 ** digits).zfill(digits)


def totp(key: bytes, unix_time: int, digits: int = 6, period: int = 30) -> str:
    """RFC 6238 §4.2 with T0 = 0."""
    return hotp(key, unix_time // period, digits)


def key_of(base32_secret: str) -> bytes:
    return base64.b32decode(base32_secret + "=" * (-len(base32_secret) % 8))
