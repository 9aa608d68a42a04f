"""Canaries: the app secret, the phrase and the customer ref never appear in clear in the SQLite
file, the PostgreSQL tables, the events, the logs or the tickets."""

from __future__ import annotations

import base64
import logging

import pytest

from callproof.enrollment import EnrolledProofs
from callproof.proofs import totp as otp
from callproof.store.events import read_events

from ..conftest import World
from ..test_privacy import _dump_database, _forms

CANARY_REF = "CANARY-ENROLLED-7c2f"
CANARY_PHRASE = "canary heron 9f3a at dawn"


def test_enrolled_proofs_leave_no_canary(world: World, backend: str,
                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    w = world
    proofs = EnrolledProofs(w.deployment)
    token = proofs.create_enrollment(CANARY_REF)
    handle = proofs.open_enrollment(token.token)
    enrolment = proofs.enroll_totp(handle=handle)
    proofs.confirm_totp(otp.code_at(enrolment.secret, w.clock.now()), handle=handle)
    proofs.set_phrase(CANARY_PHRASE, customer_ref=CANARY_REF)
    call = w.issuer.issue(agent_id="a-001", reason="payment_failed", customer_ref=CANARY_REF)
    w.issuer.connected(call.ticket_id)
    shown = proofs.reveal(call.ticket_id)
    assert shown.phrase == CANARY_PHRASE and shown.app_code
    proofs.call_status(CANARY_REF)

    secret = enrolment.secret
    raw = base64.b32decode(secret)
    canaries = [*_forms(CANARY_REF), *_forms(CANARY_PHRASE), CANARY_PHRASE.upper().encode(),
                secret.encode(), secret.lower().encode(), raw, token.token.encode(),
                enrolment.otpauth_uri.encode()]
    dump = _dump_database(w, backend)
    with w.deployment.store.read() as conn:
        bodies = b"\n".join(e.to_bytes() for e in read_events(conn, w.deployment.issuer_id))
    logs = "\n".join(r.getMessage() for r in caplog.records).encode()
    for haystack, where in ((dump, "the database"), (bodies, "the events"), (logs, "the logs"),
                            (call.ticket.encode(), "the ticket")):
        for canary in canaries:
            assert canary not in haystack, f"{canary!r} found in {where}"
    assert f'"{shown.app_code}"'.encode() not in bodies  # the revealed code is in no event
    assert b"enrolled_proofs" in dump or backend  # the SQLite dump did include the new tables
