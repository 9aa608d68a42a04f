"""JWS compact serialisation (RFC 7515) for Ed25519 only — framing, not cryptography.

The signature itself is computed and checked by ``cryptography``'s Ed25519 in :mod:`keys`;
this module only splits, joins and base64url-codes the three parts, strictly.

    >>> token = sign_compact(header_bytes, payload_bytes, signing_key.sign)
    >>> header_b64, payload_b64, signature = split_compact(token)
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from callproof.errors import MalformedTicket, TicketTooLarge

#: A ticket larger than this is refused before any parsing (spec §5 step 1).
MAX_TOKEN_BYTES = 4096

# base64url → standard alphabet; "+", "/" and "=" in the input become "!", which strict mode
# refuses, so only the URL-safe alphabet without padding gets through.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")
_SIGNATURE_CHARS = 86  # 64 bytes, unpadded


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding; raises ``ValueError`` on anything else.

    The standard alphabet's ``+`` and ``/``, padding, whitespace and every other character are
    refused (``binascii``'s strict mode does the scanning, in C).
    """
    raw = text.encode("ascii", "replace") if isinstance(text, str) else text
    if len(raw) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        return binascii.a2b_base64(raw.translate(_TO_STANDARD) + b"=" * (-len(raw) % 4),
                                   strict_mode=True)
    except binascii.Error as e:
        raise ValueError("not base64url") from e


def sign_compact(header: bytes, payload: bytes, sign: Callable[[bytes], bytes]) -> str:
    """Join header and payload, sign the ASCII signing input, return the compact JWS."""
    signing_input = b64url_encode(header) + "." + b64url_encode(payload)
    return signing_input + "." + b64url_encode(sign(signing_input.encode("ascii")))


def split_compact(token: str | bytes) -> tuple[str, str, bytes]:
    """Split a compact JWS into header text, payload text and the 64 signature bytes.

    Raises :class:`TicketTooLarge` over 4 KiB and :class:`MalformedTicket` for anything that is
    not three unpadded base64url parts with a 64-byte signature in its one canonical spelling.
    """
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError as e:
            raise MalformedTicket("the ticket is not ASCII") from e
    elif not token.isascii():  # the signing input is its ASCII bytes (found by fuzz/)
        raise MalformedTicket("the ticket is not ASCII")
    if len(token) > MAX_TOKEN_BYTES:
        raise TicketTooLarge(f"the ticket is {len(token)} bytes; at most {MAX_TOKEN_BYTES}")
    parts = token.strip().split(".")
    if len(parts) != 3 or not parts[0] or not parts[1] or len(parts[2]) != _SIGNATURE_CHARS:
        raise MalformedTicket("not a compact JWS: three base64url parts with a 64-byte signature")
    header_b64, payload_b64, sig_b64 = parts
    try:
        signature = b64url_decode(sig_b64)
    except ValueError as e:
        raise MalformedTicket("the signature is not base64url") from e
    # Only one spelling of the signature is accepted, so a token cannot be re-spelled: 86
    # characters carry 516 bits for 512, and the 4 spare bits of the last one must be zero.
    if sig_b64[-1] not in "AQgw":
        raise MalformedTicket("the signature is not canonically base64url-encoded")
    return header_b64, payload_b64, signature
