"""Canonical JSON (RFC 8785, JCS): the one codec for signed and logged bytes.

Ticket payloads and audit-log leaves are produced here and nowhere else, so the bytes that are
signed and the bytes that are hashed into the log are the same function of the same data.

    >>> canonical_json({"b": 1, "a": "é"})
    b'{"a":"\\xc3\\xa9","b":1}'
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import rfc8785

from callproof.errors import InputError

# RFC 8785's integers: those an IEEE 754 double holds exactly (as the rfc8785 package checks).
_INT_MIN, _INT_MAX = -(2**53) + 1, 2**53 - 1
# For values made only of strings, safe integers, booleans, null, lists and objects with ASCII
# keys, the standard library's encoder writes exactly RFC 8785's bytes: members sorted (for ASCII
# keys code-point order is UTF-16 order), no whitespace, non-ASCII as UTF-8, and the same escapes
# (" \\ \b \f \n \r \t and \u00xx, lower-case hex, for the other control characters; nothing
# else). It runs in C, five times as fast as rfc8785's pure Python, and tickets and log events
# are serialised on every request. Anything else (floats, non-ASCII keys, subclasses, lone
# surrogates) goes through rfc8785; tests/protocol/test_canonical.py holds the two together.
_FAST = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                         allow_nan=False, check_circular=True)


def _plain(value: Any) -> bool:
    """Whether ``value`` is made only of what the fast encoder writes as RFC 8785 does."""
    t = type(value)
    if t is dict:
        for k, v in value.items():
            if type(k) is not str or not k.isascii():
                return False
            if type(v) is not str and not _plain(v):  # strings, the usual case, inline
                return False
        return True
    if t is str or t is bool or value is None:
        return True
    if t is int:
        return bool(_INT_MIN <= value <= _INT_MAX)
    if t is list or t is tuple:
        for v in value:
            if type(v) is not str and not _plain(v):
                return False
        return True
    return False


def canonical_json(value: Any) -> bytes:
    """Serialise ``value`` as RFC 8785 canonical JSON.

    Raises :class:`InputError` for values JSON cannot carry exactly (floats out of range,
    integers beyond 2**53, non-string keys).
    """
    if _plain(value):
        try:
            return _FAST.encode(value).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: rfc8785 below says so
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
# The same scanner without the hook: it builds each object in C, keeping a duplicate's last value.
# (JSONDecoder.raw_decode calls this attribute; typeshed does not list it.)
_scan_unhooked: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder(
    parse_constant=_refuse_constant).scan_once  # type: ignore[attr-defined]


def parse_json_strict(data: bytes | str) -> Any:
    """Parse JSON, refusing duplicate members and NaN/Infinity. Raises ``ValueError`` (also
    for JSON nested too deeply for the parser, which would otherwise raise RecursionError)."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    value = _parse_shallow_object(text)
    if value is not None:
        return value
    try:
        return _STRICT.decode(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _parse_shallow_object(text: str) -> dict[str, Any] | None:
    """The fast path of :func:`parse_json_strict` for what tickets, JOSE headers and log events
    are: an object, without surrounding whitespace, whose own values are the only objects in
    it with members. Returns None for anything else or anything in doubt, and the strict
    parser decides.

    The per-object hook that finds duplicates costs more than the rest of a ticket's parse
    (verify_ticket is hot), so duplicates are ruled out by counting instead. Each member of
    each object in the text has one ":" outside strings, and there is no other ":" outside
    strings. So when the text holds exactly as many ":" as the object and its member objects
    have distinct names, no member was folded into an earlier one of the same name, and no
    object deeper down has any member. A ":" inside a string, or a member deeper down, only
    sends the text to the strict parser. tests/protocol/test_canonical.py holds the two
    paths together.
    """
    try:
        value, end = _scan_unhooked(text, 0)
    except (StopIteration, ValueError, RecursionError):
        return None  # not JSON from its first character: the strict parser says why
    if end != len(text) or type(value) is not dict:
        return None
    names = len(value)
    for member in value.values():
        if type(member) is dict:
            names += len(member)
    return value if text.count(":") == names else None


def is_canonical(data: bytes) -> bool:
    """True when ``data`` is exactly the canonical form of the JSON it holds."""
    try:
        return canonical_json(parse_json_strict(data)) == data
    except (ValueError, InputError):
        return False
