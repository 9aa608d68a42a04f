"""Several processes at once, as several workers or servers would run (spec §6, ADR 0012).

They never share a live code, never lose a ticket, never let two clients claim one ticket; an
integrator running beside them makes the queued events one contiguous log whose tree, bundle and
every ticket's story verify — on SQLite and on PostgreSQL, with no deployment-wide lock.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from callproof import CheckFailed, Issuer, SystemClock, new_client_token
from callproof.audit.log import AuditLog
from callproof.auditor.bundle import verify_bundle
from callproof.checkflow import CheckFlow
from callproof.deployment import Deployment
from callproof.store import schema
from callproof.store.integrator import integrate_all
from callproof.tlog import merkle

from .conftest import World

WORKERS = 4
PER_WORKER = 40

pytestmark = pytest.mark.slow


def _issue_many(args: tuple[str, str, int]) -> list[tuple[str, str]]:
    data_dir, url, count = args
    if url:
        os.environ["CALLPROOF_DATABASE_URL"] = url
    issuer = Issuer.open(data_dir)
    out = []
    for i in range(count):
        call = issuer.issue(agent_id="a-001", reason="payment_failed",
                            customer_ref=f"C-{i % 7}", phone="+886912345678")
        out.append((call.ticket_id, call.code))
    issuer.dep.store.close()
    return out


def _claim_all(args: tuple[str, str, list[str]]) -> list[tuple[str, str]]:
    data_dir, url, codes = args
    if url:
        os.environ["CALLPROOF_DATABASE_URL"] = url
    flow = CheckFlow.open(data_dir)
    results = []
    for code in codes:
        try:
            results.append((code, flow.lookup(code, new_client_token()).ticket_id))
        except CheckFailed as e:
            results.append((code, e.outcome))
    flow.dep.store.close()
    return results


def _integrate_until(data_dir: str, url: str, stop: str) -> None:
    """An integrator beside the requests, as `callproof worker` runs (bounded: 120 s at most)."""
    if url:
        os.environ["CALLPROOF_DATABASE_URL"] = url
    dep = Deployment.open(data_dir)
    deadline = time.monotonic() + 120
    while not os.path.exists(stop) and time.monotonic() < deadline:
        if integrate_all(dep.store) == 0:
            time.sleep(0.01)
    dep.store.close()


def test_processes_issue_and_claim_concurrently(world: World, backend: str,
                                                tmp_path: Path) -> None:
    data_dir = str(world.path)
    ctx = mp.get_context("spawn")
    stop = tmp_path / "stop"
    integrator = ctx.Process(target=_integrate_until, args=(data_dir, backend, str(stop)))
    integrator.start()
    with ctx.Pool(WORKERS) as pool:
        batches = pool.map(_issue_many, [(data_dir, backend, PER_WORKER)] * WORKERS)
    issued = [t for batch in batches for t in batch]
    assert len(issued) == WORKERS * PER_WORKER
    assert len({code for _, code in issued}) == len(issued), "two live tickets share a code"

    codes = [code for _, code in issued]
    with ctx.Pool(WORKERS) as pool:
        # Every worker races for every code, each worker in a different order.
        rounds = pool.map(_claim_all, [(data_dir, backend, codes[i::1] if i % 2 else codes[::-1])
                                       for i in range(WORKERS)])
    winners = Counter(code for results in rounds for code, outcome in results
                      if outcome.startswith("t_"))
    assert set(winners) == set(codes) and set(winners.values()) == {1}, \
        "a ticket was claimed by two clients, or by none"
    losers = Counter(outcome for results in rounds for _, outcome in results
                     if not outcome.startswith("t_"))
    assert set(losers) <= {"claimed_elsewhere", "failed"}

    stop.touch()
    integrator.join(timeout=150)
    assert integrator.exitcode == 0
    store = world.deployment.store
    integrate_all(store)  # what was queued after the integrator's last round
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(schema.tickets)).scalar_one() \
            == len(issued)
        idx = [i for (i,) in conn.execute(select(schema.events.c.idx)
                                          .order_by(schema.events.c.idx))]
        claims = Counter(t for (t,) in conn.execute(
            select(schema.events.c.ticket_id).where(schema.events.c.type == "ticket.claimed")))
    assert idx == list(range(len(idx))), "event indices are not contiguous"
    # The audit log's tree, appended by every process in its own transactions, is the tree of
    # the events in index order.
    with store.read() as conn:
        bodies = [bytes(b) for (b,) in conn.execute(select(schema.events.c.body)
                                                    .order_by(schema.events.c.idx))]
    assert AuditLog(world.deployment).root() == merkle.root_hash(
        [merkle.leaf_hash(b) for b in bodies]), "the tree root is not the events' root"
    assert set(claims.values()) == {1} and len(claims) == len(issued)
    # Leaf order may differ from commit order; each ticket's own events keep theirs: the
    # exported bundle verifies, every ticket's story included.
    log = AuditLog(world.deployment)
    log.export(tmp_path / "bundle")
    report = verify_bundle(tmp_path / "bundle", log_key=log.vkey(), workers=1)
    assert report.ok, [str(f) for f in report.failures[:5]]


def test_data_dir_is_usable_from_a_fresh_process(world: World, backend: str,
                                                 tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        [(ticket_id, code)] = pool.apply(_issue_many, ((str(world.path), backend, 1),))
    step = world.flow.lookup(code, new_client_token(), now=SystemClock().now())
    assert step.ticket_id == ticket_id
