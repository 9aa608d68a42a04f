"""Enrolled proofs, the opt-in routes that need no address: app codes (TOTP) and phrases.

This package holds the pure parts (:mod:`.totp`, :mod:`.phrase`) and the two small store
helpers other modules call inside their own transactions: which proofs a ticket offers (the
issuer's ``mth`` claim) and deleting everything enrolled when a customer is forgotten. The
enrolment and reveal services live in :mod:`callproof.enrollment`.
"""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, delete, select, true, update

from callproof.store import schema

TOTP = "totp"
PHRASE = "phrase"
KINDS = (TOTP, PHRASE)

_P = schema.enrolled_proofs
_OFFERED = select(_P.c.kind).where(_P.c.issuer_id == bindparam("issuer"),
                                   _P.c.handle == bindparam("handle"), _P.c.confirmed == true())


def offered_methods(conn: Connection, issuer: str, handle: str) -> tuple[str, ...]:
    """The confirmed proofs of ``handle`` in ``mth`` order: ("totp", "phrase") or fewer."""
    kinds = {k for (k,) in conn.execute(_OFFERED, {"issuer": issuer, "handle": handle})}
    return tuple(k for k in KINDS if k in kinds)


def forget_handle(conn: Connection, issuer: str, handle: str) -> None:
    """Delete everything sealed or pending for ``handle`` (inside the caller's transaction)."""
    conn.execute(delete(_P).where(_P.c.issuer_id == issuer, _P.c.handle == handle))
    t = schema.enrollment_tokens
    conn.execute(delete(t).where(t.c.issuer_id == issuer, t.c.handle == handle))
    r = schema.reveals  # the per-agent counts stay; the link to the customer goes
    conn.execute(update(r).where(r.c.issuer_id == issuer, r.c.handle == handle)
                 .values(handle=None))
