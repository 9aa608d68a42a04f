"""The integrator writes a batch's leaves and nodes at once: the tree is the same whatever the
batches, on SQLite and PostgreSQL — every root equals RFC 6962's over the events in leaf order,
and proofs from the stored nodes verify."""

from __future__ import annotations

from sqlalchemy import select

from callproof.protocol import events as ev
from callproof.store import schema
from callproof.store.integrator import integrate_queued
from callproof.store.log_tree import consistency_proof, inclusion_proof, root_at, tree_size
from callproof.tlog import merkle

from .conftest import World


def test_any_batching_builds_the_rfc6962_tree(world: World) -> None:
    w = world
    dep, store, issuer = world.deployment, world.deployment.store, world.deployment.issuer_id
    sizes = []
    for batch in (1, 2, 3, 1, 7, 16, 1, 30, 5, 64):
        with store.write() as conn:
            for i in range(batch):
                dep.record(conn, ev.AGENT_ADDED, w.clock.now(), agent_id=f"a-{batch}-{i}")
        while integrate_queued(store, limit=batch):
            pass
        with store.read() as conn:
            sizes.append(tree_size(conn, issuer))
    with store.read() as conn:
        bodies = [bytes(b) for (b,) in conn.execute(
            select(schema.events.c.body).where(schema.events.c.issuer_id == issuer)
            .order_by(schema.events.c.idx))]
        leaves = [merkle.leaf_hash(b) for b in bodies]
        assert len(leaves) == sizes[-1] and sizes == sorted(sizes)
        for size in {*sizes, 1, 2, 3, 17, len(leaves) - 1}:
            root = root_at(conn, issuer, size)
            assert root == merkle.root_hash(leaves[:size])
            index = size // 2
            merkle.verify_inclusion(leaves[index], index, size,
                                    inclusion_proof(conn, issuer, index, size), root)
            new = len(leaves)
            merkle.verify_consistency(size, new, root, root_at(conn, issuer, new),
                                      consistency_proof(conn, issuer, size, new))
