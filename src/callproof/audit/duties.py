"""The audit log's background duties, and the full list a `callproof worker` runs.

- ``log``: integrate the queued events into the tree
  (:func:`callproof.store.integrator.integrate_all`, a batch at a time while the lease is held,
  again at once while batches come back full), then sign a checkpoint when the tree grew and
  ``checkpoint_seconds`` passed since the last one (or ``checkpoint_events`` leaves were added):
  every event is in a signed checkpoint a few seconds after it committed.
- ``witnesses``: push the latest checkpoint to the witnesses in ``witnesses.toml``, until each
  has cosigned it.

With :func:`callproof.worker.alert_duty` and :func:`callproof.worker.housekeeping_duty` they make
:func:`standard_duties`. They live here, not in :mod:`callproof.worker`, because the audit log is
the layer above the services (ADR 0009).

    >>> Worker(dep, standard_duties(dep, Settings())).run()
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select

from callproof.audit.log import AuditLog
from callproof.deployment import Deployment
from callproof.errors import PushError
from callproof.protocol.clock import to_epoch
from callproof.store import schema
from callproof.store.integrator import BATCH, integrate_all
from callproof.store.log_tree import tree_size
from callproof.worker import Duty, Settings, alert_duty, housekeeping_duty

__all__ = ["log_duty", "standard_duties", "witness_duty"]

log = logging.getLogger("callproof.worker")

_C, _Q = schema.log_checkpoints, schema.event_queue


def standard_duties(dep: Deployment, settings: Settings | None = None) -> list[Duty]:
    """Every background duty of a deployment, at the intervals of ``settings``."""
    s = settings or Settings()
    return [log_duty(dep, s), witness_duty(dep, s.witness_every),
            alert_duty(dep, s.alert_every), housekeeping_duty(dep, s.housekeeping_every)]


def log_duty(dep: Deployment, settings: Settings) -> Duty:
    """Integrate, then sign a checkpoint when one is due."""
    audit_log = AuditLog(dep)

    def integrate_and_sign(held: Callable[[], bool]) -> bool:
        with dep.store.read() as conn:  # a read when nothing waits: no write transaction
            waiting = conn.execute(select(_Q.c.seq).limit(1)).first() is not None
        if waiting:
            n = integrate_all(dep.store, limit=BATCH, rounds=1)
            if n >= BATCH and held():
                return True  # more waits: the next batch at once, the checkpoint after it
        if held() and _checkpoint_due(dep, settings):
            signed = audit_log.checkpoint()
            log.debug("checkpoint of %d entries signed", signed.size)
        return False

    return Duty("log", settings.integrate_every, integrate_and_sign)


def _checkpoint_due(dep: Deployment, settings: Settings) -> bool:
    """The tree grew since the latest checkpoint, and that is ``checkpoint_seconds`` old or
    ``checkpoint_events`` behind (reads only)."""
    with dep.store.read() as conn:
        size = tree_size(conn, dep.issuer_id)
        row = conn.execute(select(_C.c.size, _C.c.signed_at).where(
            _C.c.issuer_id == dep.issuer_id).order_by(_C.c.size.desc()).limit(1)).first()
    if row is None:
        return size > 0
    if size <= row.size:
        return False
    return size - int(row.size) >= settings.checkpoint_events or \
        to_epoch(dep.now()) - int(row.signed_at) >= settings.checkpoint_seconds


def witness_duty(dep: Deployment, every: float) -> Duty:
    """Push the latest checkpoint to every witness until each has cosigned it."""
    audit_log = AuditLog(dep)
    done = [0]  # the size every witness has cosigned, as far as this worker saw

    def push(held: Callable[[], bool]) -> bool:
        witnesses = audit_log.witnesses()
        if not witnesses:
            return False
        latest = audit_log.latest_checkpoint()
        if latest is None or latest.size <= done[0]:
            return False
        failed = [str(r) for r in audit_log.push_to_witnesses(latest, witnesses=witnesses)
                  if not r.ok]
        if failed:  # one line in the worker's log; tried again at the next step
            raise PushError(f"checkpoint {latest.size}: " + "; ".join(failed))
        done[0] = latest.size
        return False

    return Duty("witnesses", every, push)
