"""Counters in a sliding window, shared by every worker and instance through the database.

The staff limits (failed sign-ins per address, per account and per both; tickets an agent starts
on the console) count here, per minute, so that ``callproof serve``'s workers and several
instances see one count — unlike a limiter's per-process memory. A counter is named by a keyed
hash (:meth:`~callproof.protocol.privacy.HashKeys.client_hash`) of its purpose and subject, so
the table holds no address and no account id; the rows share ``client_failures`` with the check
flow's failed lookups, whose names (``addr:…``/``net:…`` hashed) never collide with these
(``<purpose>:…`` hashed).

A limit takes its count first and checks after (:func:`take`), inside one write transaction:
the minute's row lock orders concurrent requests, so parallel requests cannot all see room
under the limit and all pass.

    >>> with dep.store.write() as conn:
    ...     if not take(dep, conn, "sign-in:agent:account", "a-001", now, 900, limit=10): ...
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, func, select, update

from callproof.deployment import Deployment
from callproof.protocol.clock import to_epoch
from callproof.store import schema

__all__ = ["add", "count", "name", "purge", "take", "take_console_ticket"]

_C = schema.client_failures


def name(dep: Deployment, purpose: str, subject: str) -> str:
    """The stored name of ``purpose``'s counter for ``subject``: a keyed hash of both."""
    return dep.hash_keys.client_hash(f"{purpose}:{subject}")


def count(dep: Deployment, conn: Connection, purpose: str, subject: str, now: int,
          window_seconds: int) -> int:
    """How many were counted for ``subject`` in the last ``window_seconds`` (whole minutes)."""
    since = now - window_seconds
    total = conn.execute(select(func.coalesce(func.sum(_C.c.count), 0)).where(
        _C.c.client_hash == name(dep, purpose, subject),
        _C.c.minute >= since - since % 60)).scalar_one()
    return int(total)


def add(dep: Deployment, conn: Connection, purpose: str, subject: str, now: int,
        window_seconds: int, amount: int = 1) -> None:
    """Count ``amount`` (−1 gives one back) for ``subject`` now, inside the caller's
    transaction; forget its minutes that have left the window."""
    key, minute = name(dep, purpose, subject), now - now % 60
    if amount <= 0 or not dep.store.insert_if_absent(
            conn, _C, {"client_hash": key, "minute": minute, "count": amount}):
        conn.execute(update(_C).where(_C.c.client_hash == key, _C.c.minute == minute)
                     .values(count=_C.c.count + amount))
    conn.execute(delete(_C).where(_C.c.client_hash == key,
                                  _C.c.minute < minute - window_seconds - 60))


def take(dep: Deployment, conn: Connection, purpose: str, subject: str, now: int,
         window_seconds: int, *, limit: int) -> bool:
    """Count one for ``subject`` if that keeps it within ``limit`` in the window: True when
    counted, False (nothing counted) when the limit is reached."""
    add(dep, conn, purpose, subject, now, window_seconds)
    if count(dep, conn, purpose, subject, now, window_seconds) > limit:
        add(dep, conn, purpose, subject, now, window_seconds, -1)
        return False
    return True


def take_console_ticket(dep: Deployment, agent_id: str, *, now: datetime | None = None) -> bool:
    """Count a ticket an agent starts on the console against ``[limits]
    console_tickets_per_agent_minute``, over every worker and instance: False (nothing counted)
    when the agent has started that many in the last minute."""
    at = to_epoch(dep.now(now))
    with dep.store.write() as conn:
        return take(dep, conn, "console-tickets:agent", agent_id, at, 60,
                    limit=dep.config.limits.console_tickets_per_agent_minute)


def purge(dep: Deployment, *, now: datetime | None = None) -> int:
    """Delete every counter minute older than the longest window that reads them (the failed
    lookups' and the sign-ins'): a one-off subject's rows would otherwise stay. Housekeeping
    runs this (through :meth:`callproof.sign_ins.SignIns.purge`)."""
    limits = dep.config.limits
    at = to_epoch(dep.now(now))
    keep = max(limits.client_window_seconds, limits.sign_in_window_seconds, 60) + 60
    with dep.store.write() as conn:
        return int(conn.execute(delete(_C).where(_C.c.minute < at - at % 60 - keep)).rowcount)
