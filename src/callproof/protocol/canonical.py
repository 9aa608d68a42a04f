"""Canonical JSON (RFC 8785, JCS): the one codec for signed and logged bytes.

Ticket payloads and audit-log leaves are produced here and nowhere else, so the bytes that are
signed and the bytes that are hashed into the log are the same function of the same data.

    >>> canonical_json({"b": 1, "a": "é"})
    b'{"a":"\\xc3\\xa9","b":1}'
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from callproof.errors import InputError


def canonical_json(value: Any) -> bytes:
    """Serialise ``value`` as RFC 8785 canonical JSON.

    Raises :class:`InputError` for values JSON cannot carry exactly (floats out of range,
    integers beyond 2**53, non-string keys).
    """
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as e:
        raise InputError(f"value cannot be canonicalised: {e}", reason="not_canonical") from e


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member names")
    return obj


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Built once: json.loads(..., object_pairs_hook=...) would build a decoder on every call.
_STRICT = json.JSONDecoder(object_pairs_hook=_object_without_duplicates,
                           parse_constant=_refuse_constant)


def parse_json_strict(data: bytes | str) -> Any:
    """Parse JSON, refusing duplicate members and NaN/Infinity. Raises ``ValueError`` (also
    for JSON nested too deeply for the parser, which would otherwise raise RecursionError)."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    try:
        return _STRICT.decode(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def is_canonical(data: bytes) -> bool:
    """True when ``data`` is exactly the canonical form of the JSON it holds."""
    try:
        return canonical_json(parse_json_strict(data)) == data
    except (ValueError, InputError):
        return False
