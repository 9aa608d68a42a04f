"""JWS compact serialisation (RFC 7515) for Ed25519 only — framing, not cryptography.

The signature itself is computed and checked by ``cryptography``'s Ed25519 in :mod:`keys`;
this module only splits, joins and base64url-codes the three parts, strictly.

    >>> token = sign_compact(header_bytes, payload_bytes, signing_key.sign)
    >>> header_b64, payload_b64, signature = split_compact(token)
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable

from .errors import MalformedTicket, TicketTooLarge

#: A ticket larger than this is refused before any parsing (spec §5 step 1).
MAX_TOKEN_BYTES = 4096

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_TOKEN = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{86})")


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding; raises ``ValueError`` on anything else."""
    if len(text) % 4 == 1 or not _B64URL.fullmatch(text):
        raise ValueError("not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as e:  # pragma: no cover - the regex already filters these
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
    if len(token) > MAX_TOKEN_BYTES:
        raise TicketTooLarge(f"the ticket is {len(token)} bytes; at most {MAX_TOKEN_BYTES}")
    match = _TOKEN.fullmatch(token.strip())
    if match is None:
        raise MalformedTicket("not a compact JWS: three base64url parts with a 64-byte signature")
    header_b64, payload_b64, sig_b64 = match.groups()
    signature = base64.urlsafe_b64decode(sig_b64 + "==")
    # Only one spelling of the signature is accepted, so a token cannot be re-spelled.
    if b64url_encode(signature) != sig_b64:
        raise MalformedTicket("the signature is not canonically base64url-encoded")
    return header_b64, payload_b64, signature
