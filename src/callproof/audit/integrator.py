"""Integrating a deployment's queued events into its audit log: what the worker runs on a timer,
and what the log's own reads run first so that they see every event already committed.

    >>> integrate(Deployment.open("callproof-data"))
    12
"""

from __future__ import annotations

from callproof.deployment import Deployment
from callproof.store.integrator import BATCH, integrate_all

__all__ = ["integrate"]


def integrate(dep: Deployment, *, limit: int = BATCH, rounds: int = 100) -> int:
    """Integrate the deployment's queued events (batches of ``limit``, at most ``rounds`` of
    them); return how many became leaves. 0 when nothing waits or another integrator is at it."""
    return integrate_all(dep.store, limit=limit, rounds=rounds)
