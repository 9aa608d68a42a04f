"""JWS compact serialisation (RFC 7515) for Ed25519 only — framing, not cryptography.

The signature itself is computed and checked by ``cryptography``'s Ed25519 in :mod:`keys`;
this module only splits, joins and base64url-codes the three parts, strictly.

    >>> token = sign_compact(header_bytes, payload_bytes, signing_key.sign)
    >>> header_b64, payload_b64, signature = split_compact(token)

Reading a header or payload WITHOUT checking the signature is named so at the call site:
:func:`peek_unverified_header` and :func:`peek_unverified_claims` (for choosing a key, replaying
a story whose signatures are checked elsewhere, or reading back a ticket this deployment stored).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from callproof.errors import CallproofError, MalformedTicket, TicketTooLarge
from callproof.protocol.canonical import parse_json_strict

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


def _peek_part(token: Any, part: int, parts_needed: int | None) -> dict[str, Any] | None:
    if not isinstance(token, str):
        return None
    parts = token.split(".")
    if parts_needed is not None and len(parts) != parts_needed:
        return None
    try:
        value = parse_json_strict(b64url_decode(parts[part]))
    except (ValueError, UnicodeDecodeError, CallproofError):
        return None
    return value if isinstance(value, dict) else None


def peek_unverified_header(token: Any) -> dict[str, Any] | None:
    """The JOSE header of a compact JWS, parsed but NOT verified; None when it cannot be read.

    Only for choosing which key to verify with: nothing read here may be trusted."""
    return _peek_part(token, 0, None)


def peek_unverified_claims(token: Any) -> dict[str, Any] | None:
    """The payload of a three-part compact JWS as a JSON object, NOT verified; None when it
    cannot be read. The caller checks the signature elsewhere, or knows where the token came
    from (a row this deployment wrote)."""
    return _peek_part(token, 1, 3)
