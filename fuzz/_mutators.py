"""Structure-aware mutations: byte flips rarely turn ``"at":1795426140`` into ``"at":"1"``.

A custom mutator for atheris (see ``_harness.py``): half of the time it parses the input as what
it is — a ticket's JSON header and payload, a bundle's JSON lines and jwks.json — replaces one
value anywhere in it with a value of another type or out of range, writes it back in canonical
form (and, for a ticket, signs it again with the fixed test key it names), so that the input
gets past the checks of syntax and signature to the code that trusts the types. The other half
is libFuzzer's own byte mutation.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from callproof.protocol.jws import b64url_decode, b64url_encode, sign_compact

from . import _targets as T

_DEEP = "\x00deep\x00"  # stands for a value nested past the recursion limit
_ODD: list[Any] = [None, True, False, 0, -1, 1, 2**31, 2**53 + 1, 2**63, 2**64, 10**15,
                   10**20, -(10**15), 0.5, 1e300, -0.0, "", "1", "x" * 300, "\u0000", "\ud800",
                   "é", "\u202e", [], {}, [1], {"a": None}, _DEEP]


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every value inside ``value`` (itself included)."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _nodes(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _nodes(item, (*path, i))
    return found


def _mutate_json(value: Any, rng: random.Random) -> Any:
    paths = _nodes(value)
    path = rng.choice(paths)
    new = rng.choice(_ODD)
    if not path:
        return new
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    if isinstance(parent, dict) and rng.random() < 0.15:
        del parent[path[-1]]  # a missing member
    else:
        parent[path[-1]] = new
    return value


def _dump(value: Any) -> bytes:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = text.replace(json.dumps(_DEEP, ensure_ascii=False), "[" * 3000 + "]" * 3000)
    return text.encode("utf-8", "surrogatepass")


def mutate_ticket(data: bytes, rng: random.Random) -> bytes | None:
    parts = data.split(b".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(b64url_decode(parts[0].decode("ascii")))
        payload = json.loads(b64url_decode(parts[1].decode("ascii")))
    except (ValueError, RecursionError):
        return None
    if rng.random() < 0.2:
        header = _mutate_json(header, rng)
    else:
        payload = _mutate_json(payload, rng)
    kid = header.get("kid") if isinstance(header, dict) else None
    signer = T._SIGNER_BY_KID.get(kid) if isinstance(kid, str) else None
    signer = signer or T.TICKET_SIGNERS["active"]
    token = sign_compact(_dump(header), _dump(payload), signer.sign)
    if rng.random() < 0.1:  # an untouched body under a signature that is not its own
        token = ".".join([*token.split(".")[:2], b64url_encode(bytes(64))])
    return token.encode("ascii")


def mutate_bundle(data: bytes, rng: random.Random) -> bytes | None:
    parts = data.split(T.SEPARATOR)
    if len(parts) < 3:
        return None
    if rng.random() < 0.8:
        lines = parts[0].split(b"\n")
        candidates = [i for i, line in enumerate(lines) if line.strip()]
        if not candidates:
            return None
        i = rng.choice(candidates)
        try:
            lines[i] = _dump(_mutate_json(json.loads(lines[i]), rng))
        except (ValueError, RecursionError):
            return None
        parts[0] = b"\n".join(lines)
    else:
        try:
            parts[2] = _dump(_mutate_json(json.loads(parts[2]), rng))
        except (ValueError, RecursionError):
            return None
    return T.SEPARATOR.join(parts)


MUTATORS: dict[str, Callable[[bytes, random.Random], bytes | None]] = {
    "ticket": mutate_ticket,
    "bundle": mutate_bundle,
}
