"""The live audit log in the store: leaves, roots, proofs, checkpoints and the outside file."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from callproof import Issuer, new_client_token
from callproof.audit.log import AuditLog
from callproof.deployment import Deployment
from callproof.errors import InputError, LogBehindCheckpoint, LogForked
from callproof.protocol import events
from callproof.store import events as event_record
from callproof.store import schema
from callproof.store.integrator import integrate_all
from callproof.store.log_tree import append_leaf, root_at, tree_size
from callproof.tlog import merkle, note
from callproof.tlog.proof import log_origin, verify_tlog_proof
from tests.conftest import World


def _bodies(dep: Deployment) -> list[bytes]:
    """The integrated events' bodies in leaf order (what is queued is integrated first)."""
    integrate_all(dep.store)
    with dep.store.read() as conn:
        return [bytes(b) for (b,) in conn.execute(
            select(schema.events.c.body).where(schema.events.c.issuer_id == dep.issuer_id)
            .order_by(schema.events.c.idx))]


def _traffic(w: World, calls: int = 5) -> list[str]:
    ids = []
    for i in range(calls):
        call = w.issuer.issue(agent_id="a-001", reason="payment_failed",
                              phone="+886912345678" if i % 2 else None)
        ids.append(call.ticket_id)
        if i % 3 == 0:
            w.flow.lookup(call.code, new_client_token())
        w.clock.advance(seconds=7)
    return ids


def test_root_after_every_event_is_the_merkle_root_of_the_bodies(world: World) -> None:
    _traffic(world, 9)
    log = AuditLog(world.deployment)
    leaves = [merkle.leaf_hash(b) for b in _bodies(world.deployment)]
    assert log.size() == len(leaves) >= 20
    for size in range(len(leaves) + 1):
        assert log.root(size) == merkle.root_hash(leaves[:size]), size
    assert log.root() == merkle.root_hash(leaves)


def test_proofs_from_the_store_verify(world: World) -> None:
    _traffic(world, 6)
    log = AuditLog(world.deployment)
    leaves = [merkle.leaf_hash(b) for b in _bodies(world.deployment)]
    n = len(leaves)
    for size in (1, 2, 7, 8, 9, n - 1, n):
        root = merkle.root_hash(leaves[:size])
        for index in range(size):
            merkle.verify_inclusion(leaves[index], index, size, log.inclusion_proof(index, size),
                                    root)
        for old in range(1, size + 1):
            o, old_root, new, new_root, proof = log.consistency_proof(old, size)
            assert old_root == merkle.root_hash(leaves[:old]) and new_root == root
            merkle.verify_consistency(o, new, old_root, new_root, proof)
    with pytest.raises(InputError):
        log.inclusion_proof(0, n + 1)


def test_a_checkpoint_is_signed_kept_in_the_database_and_outside_it(world: World) -> None:
    log = AuditLog(world.deployment)
    signed = log.checkpoint()
    opened = note.open_note(signed.note, [note.Verifier.parse(log.vkey())])
    cp = note.Checkpoint.from_text(opened.text)
    assert cp.origin == log_origin(world.deployment.issuer_id) == "shop.example/callproof-log"
    assert (cp.size, cp.root) == (log.size(), log.root())
    assert log.checkpoint_file.read_text("utf-8") == signed.note
    assert log.checkpoint().note == signed.note  # nothing new: the same checkpoint
    _traffic(world, 1)
    bigger = log.checkpoint()
    assert bigger.size > signed.size and log.checkpoint_file.read_text("utf-8") == bigger.note
    assert [c.size for c in log.checkpoints()] == [signed.size, bigger.size]


def test_the_log_key_is_made_by_init_and_kept_private(world: World) -> None:
    key = world.path / "keys" / "log.key"
    assert key.is_file() and key.stat().st_mode & 0o777 == 0o600
    assert note.Verifier.parse(AuditLog(world.deployment).vkey()).name.endswith("/callproof-log")


def test_checkpoint_if_due_after_n_events_or_t_seconds(world: World) -> None:
    log = AuditLog(world.deployment, every_events=5, every_seconds=60)
    assert log.checkpoint_if_due() is not None  # the first one
    assert log.checkpoint_if_due() is None  # nothing new
    world.issuer.issue(agent_id="a-001", reason="payment_failed")
    assert log.checkpoint_if_due() is None  # one event, no time passed
    world.clock.advance(seconds=61)
    assert log.checkpoint_if_due() is not None  # time
    for _ in range(5):
        world.issuer.issue(agent_id="a-001", reason="payment_failed")
    assert log.checkpoint_if_due() is not None  # count


def test_prove_a_ticket_as_a_tlog_proof(world: World) -> None:
    ids = _traffic(world, 4)
    log = AuditLog(world.deployment)
    proof = log.prove_ticket(ids[1])
    assert proof.startswith("c2sp.org/tlog-proof@v1\nextra ")
    report = verify_tlog_proof(proof, note.Verifier.parse(log.vkey()))
    assert report.event is not None and report.event.type == "ticket.issued"
    assert report.event.data["ticket_id"] == ids[1]
    other = verify_tlog_proof(log.prove_ticket(ids[3]), note.Verifier.parse(log.vkey()))
    with pytest.raises(merkle.ProofError):  # another entry does not fit this proof
        verify_tlog_proof(proof, note.Verifier.parse(log.vkey()), entry=other.entry)


def test_no_smaller_checkpoint_is_signed_after_a_bigger_one(world: World) -> None:
    log = AuditLog(world.deployment)
    first = log.checkpoint()
    _traffic(world, 2)
    log.checkpoint()
    assert log.checkpoint(size=first.size).note == first.note  # an existing one: fine
    with pytest.raises(InputError, match="signs no smaller tree"):
        log.checkpoint(size=first.size - 1)


def _restore(world: World, copy: Path) -> Deployment:
    """Put the database back as it was when ``copy`` was taken; a fresh process opens it."""
    world.deployment.store.close()
    db = world.path / "callproof.db"
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)
    shutil.copy(copy, db)
    return Deployment.open(world.path, clock=world.clock)


def _snapshot(world: World, into: Path) -> None:
    world.deployment.store.close()  # checkpoints the WAL into the file
    shutil.copy(world.path / "callproof.db", into)


def test_a_restored_old_database_refuses_to_append(world: World, backend: str,
                                                   tmp_path: Path) -> None:
    log = AuditLog(world.deployment)
    log.checkpoint()
    old_size = log.size()
    if not backend:
        _snapshot(world, tmp_path / "backup.db")
    _traffic(world, 2)
    AuditLog(world.deployment).checkpoint()
    if backend:  # PostgreSQL: a restore is the later rows going away
        with world.deployment.store.write() as conn:
            conn.execute(delete(schema.events).where(schema.events.c.idx >= old_size))
        dep = Deployment.open(world.path, clock=world.clock)
        _drop_nodes_beyond(dep, old_size)
    else:
        dep = _restore(world, tmp_path / "backup.db")
    try:


        with pytest.raises(LogBehindCheckpoint, match="database is behind"):
            Issuer(dep).issue(agent_id="a-001", reason="payment_failed")
        with pytest.raises(LogBehindCheckpoint):
            AuditLog(dep).checkpoint()
        assert AuditLog(dep).size() == old_size  # nothing was appended
    finally:
        dep.store.close()


def _drop_nodes_beyond(dep: Deployment, size: int) -> None:
    n = schema.log_nodes
    with dep.store.write() as conn:
        rows = conn.execute(select(n.c.level, n.c.idx)).all()
        for level, idx in rows:
            if (idx + 1) << level > size:
                conn.execute(delete(n).where(n.c.level == level, n.c.idx == idx))


def test_a_tampered_tree_refuses_to_append_and_to_sign(world: World) -> None:
    log = AuditLog(world.deployment)
    log.checkpoint()
    n = schema.log_nodes
    with world.deployment.store.write() as conn:
        conn.execute(update(n).where(n.c.level == 0, n.c.idx == 2).values(hash=bytes(32)))
        conn.execute(update(n).where(n.c.level == 1, n.c.idx == 1).values(hash=bytes(32)))
        conn.execute(update(n).where(n.c.level == 2, n.c.idx == 0).values(hash=bytes(32)))
        conn.execute(update(n).where(n.c.level == 3, n.c.idx == 0).values(hash=bytes(32)))
        conn.execute(update(n).where(n.c.level == 4, n.c.idx == 0).values(hash=bytes(32)))
    fresh = Deployment.open(world.path, clock=world.clock)  # a new process checks once
    try:


        with pytest.raises(LogForked, match="forked"):
            Issuer(fresh).issue(agent_id="a-001", reason="payment_failed")
    finally:
        fresh.store.close()
    # Remove the file: the database's own last checkpoint still stops a forked signature.
    log.checkpoint_file.unlink()
    with world.deployment.store.write() as conn:
        event_record.append(world.deployment.store, conn, issuer=world.deployment.issuer_id,
                      type=events.AGENT_ENABLED, at=world.clock.now(), agent_id="a-001")
    with pytest.raises(LogForked, match="refusing to sign"):
        AuditLog(world.deployment).checkpoint()


def test_the_migration_builds_the_tree_of_existing_events(world: World) -> None:
    _traffic(world, 3)
    dep = world.deployment
    expected = AuditLog(dep).root()
    migration = importlib.import_module("callproof.store.migrations.versions.0003_audit_log")
    with dep.store.write() as conn:
        conn.execute(delete(schema.log_nodes))
        migration._build_existing_trees(conn, schema.log_nodes)
        assert root_at(conn, dep.issuer_id, tree_size(conn, dep.issuer_id)) == expected


def test_appending_a_leaf_reads_only_its_siblings(world: World) -> None:
    """Every stored node is the MTH of its range (checked against an in-memory tree)."""
    store = world.deployment.store
    leaves = [merkle.leaf_hash(b"leaf %d" % i) for i in range(70)]
    with store.write() as conn:
        for i in range(70):
            append_leaf(store, conn, "other.example", i, b"leaf %d" % i)
        rows = conn.execute(select(schema.log_nodes.c.level, schema.log_nodes.c.idx,
                                   schema.log_nodes.c.hash)
                            .where(schema.log_nodes.c.issuer_id == "other.example")).all()
    assert len(rows) == 70 + 35 + 17 + 8 + 4 + 2 + 1
    for level, idx, h in rows:
        assert bytes(h) == merkle.root_hash(leaves[idx << level:(idx + 1) << level])


def test_checkpoint_time_is_the_deployment_clock(world: World) -> None:
    world.clock.advance(seconds=5)
    signed = AuditLog(world.deployment).checkpoint()
    assert signed.signed_at == int((world.clock.now()).timestamp())
    assert AuditLog(world.deployment).latest_checkpoint() == signed
