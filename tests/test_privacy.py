"""No personal data at rest: canary values never reach the database, the events or the output.

A customer ref, a phone number, a call code and a client address go in; only keyed hashes, random
handles and the four-digit hint may come out — on SQLite (the file and its WAL) and PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select, text

from callproof import Admin, new_client_token
from callproof.store import schema
from callproof.store.events import read_events

from .conftest import World

CANARY_REF = "CANARY-CUSTOMER-5b1e"
CANARY_PHONE = "+886987654321"
CANARY_ADDRESS = "198.51.100.231"


def _dump_database(world: World, backend: str) -> bytes:
    """Every byte the database holds for this deployment."""
    store = world.deployment.store
    if not backend:
        db = world.path / "callproof.db"
        with sqlite3.connect(db) as conn:  # fold the WAL in so the main file holds everything
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return b"".join(p.read_bytes() for p in sorted(world.path.glob("callproof.db*")))
    chunks = []
    with store.read() as conn:
        for table in schema.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                chunks.append(repr(tuple(row)).encode())
        chunks.append(repr(conn.execute(text("SELECT * FROM alembic_version")).all()).encode())
    return b"\n".join(chunks)


def _forms(value: str) -> list[bytes]:
    digits = "".join(c for c in value if c.isdigit())
    # A digits-only form of a few digits ("51") turns up by chance in any binary column (the
    # audit log's hashes); only a form long enough to be specific is looked for.
    forms = [value.encode(), value.lower().encode()]
    return [*forms, digits.encode()] if len(digits) >= 6 else forms


def test_canaries_appear_nowhere(world: World, backend: str, tmp_path: Path) -> None:
    w = world
    call = w.issuer.issue(agent_id="a-001", reason="payment_failed", customer_ref=CANARY_REF,
                          phone=CANARY_PHONE)
    client = new_client_token()
    w.flow.lookup(call.code_display, client, client_address=CANARY_ADDRESS)
    w.flow.answer_number(call.ticket_id, client, yes=True)
    for _ in range(3):  # failed lookups from the same address are counted, not stored in clear
        with pytest.raises(Exception):  # noqa: B017 - any refusal will do
            w.flow.lookup("000000000", new_client_token(), client_address=CANARY_ADDRESS)

    dump = _dump_database(w, backend)
    with w.deployment.store.read() as conn:
        bodies = b"\n".join(e.to_bytes() for e in read_events(conn, w.deployment.issuer_id))
    for haystack, where in ((dump, "the database"), (bodies, "the events"),
                            (call.ticket.encode(), "the ticket")):
        for canary in (*_forms(CANARY_REF), *_forms(CANARY_PHONE), CANARY_ADDRESS.encode(),
                       call.code.encode(), client.encode()):
            assert canary not in haystack, f"{canary!r} found in {where}"
    assert b"4321" in dump  # the hint is the one part of the number that is kept


def test_forgetting_a_customer_unlinks_their_tickets(world: World) -> None:
    w = world
    first = w.issuer.issue(agent_id="a-001", reason="payment_failed", customer_ref=CANARY_REF)
    again = w.issuer.issue(agent_id="a-002", reason="order_delivery", customer_ref=CANARY_REF)
    assert first.claims.subject == again.claims.subject is not None  # one handle per customer
    assert Admin(w.deployment).forget_customer(CANARY_REF)
    with w.deployment.store.read() as conn:
        assert conn.execute(select(schema.customers)).all() == []
    after = w.issuer.issue(agent_id="a-001", reason="payment_failed", customer_ref=CANARY_REF)
    assert after.claims.subject != first.claims.subject  # the old handle is gone for good


def test_reprs_hide_secrets(world: World) -> None:
    w = world
    call = w.issuer.issue(agent_id="a-001", reason="payment_failed")
    from callproof.issuer import load_signing_key

    with w.deployment.store.read() as conn:
        key = load_signing_key(w.deployment, conn, call.claims.kid or "")
    for obj in (call, key, w.deployment.hash_keys, w.deployment, w.issuer):
        shown = repr(obj)
        assert call.code not in shown and "PRIVATE" not in shown
    assert "hidden" in repr(w.deployment.hash_keys)


def test_forgetting_ignores_surrounding_spaces_like_issuing_does(world: World) -> None:
    world.issuer.issue(agent_id="a-001", reason="payment_failed", customer_ref=" C-42 ")
    assert Admin(world.deployment).forget_customer("C-42")
