"""Enrolment tokens, app enrolment, phrases, reveals, the call status — on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import pytest
from sqlalchemy import select, update

from callproof.enrollment import MAX_CONFIRM_FAILURES, EnrolledProofs
from callproof.errors import EnrollmentError, NotFound, PhraseRefused, RevealRefused, SealError
from callproof.proofs import totp as otp
from callproof.protocol import events
from callproof.store import schema
from callproof.store.events import read_events

from ..conftest import World
from .otp_by_hand import key_of
from .otp_by_hand import totp as totp_by_hand

REF = "C-1001"


@pytest.fixture
def proofs(world: World) -> EnrolledProofs:
    return EnrolledProofs(world.deployment)


def _enrol_app(w: World, p: EnrolledProofs, ref: str = REF) -> str:
    enrolment = p.enroll_totp(customer_ref=ref)
    p.confirm_totp(otp.code_at(enrolment.secret, w.clock.now()), customer_ref=ref)
    return enrolment.secret


def _events(w: World, type_: str) -> list[events.Event]:
    with w.deployment.store.read() as conn:
        return [e for e in read_events(conn, w.deployment.issuer_id) if e.type == type_]


def _limits(w: World, **changes: int) -> None:
    config = w.deployment.config
    w.deployment.config = dataclasses.replace(
        config, limits=dataclasses.replace(config.limits, **changes))


# --- enrolment tokens -------------------------------------------------------------------------


def test_a_token_opens_once(world: World, proofs: EnrolledProofs) -> None:
    token = proofs.create_enrollment(REF)
    assert token.expires_at == world.clock.now() + timedelta(minutes=15)
    assert token.token not in repr(token)
    handle = proofs.open_enrollment(token.token)
    issued = world.issuer.issue(agent_id="a-001", reason="payment_failed", customer_ref=REF)
    assert handle == issued.claims.subject
    with pytest.raises(EnrollmentError, match="already used") as e:
        proofs.open_enrollment(token.token)
    assert e.value.reason == "token_used"


def test_an_expired_or_unknown_token_is_refused(world: World, proofs: EnrolledProofs) -> None:
    token = proofs.create_enrollment(REF)
    world.clock.advance(seconds=15 * 60)
    with pytest.raises(EnrollmentError, match="expired .*15 minutes") as e:
        proofs.open_enrollment(token.token)
    assert e.value.reason == "token_expired"
    for bad in ("enr_nope", "nope", token.token + "x"):
        with pytest.raises(EnrollmentError, match="not valid") as e:
            proofs.open_enrollment(bad)
        assert e.value.reason == "token_unknown"


def test_the_store_keeps_only_the_token_hash(world: World, proofs: EnrolledProofs) -> None:
    token = proofs.create_enrollment(REF)
    with world.deployment.store.read() as conn:
        rows = conn.execute(select(schema.enrollment_tokens)).all()
    assert len(rows) == 1 and token.token not in repr(rows)


# --- app enrolment (TOTP) ---------------------------------------------------------------------


def test_app_enrolment_is_pending_until_one_current_code(world: World,
                                                        proofs: EnrolledProofs) -> None:
    w = world
    handle = proofs.open_enrollment(proofs.create_enrollment(REF).token)
    enrolment = proofs.enroll_totp(handle=handle)
    assert enrolment.secret not in repr(enrolment)
    assert proofs.enrolled(customer_ref=REF) == {"totp": "pending", "phrase": False}
    pending = w.issuer.issue(agent_id="a-001", reason="payment_failed", customer_ref=REF)
    assert pending.claims.methods == ("code",)  # a pending enrolment is not offered
    with pytest.raises(EnrollmentError, match="does not match") as e:
        proofs.confirm_totp("000000" if otp.code_at(enrolment.secret, w.clock.now()) != "000000"
                            else "111111", handle=handle)
    assert e.value.reason == "wrong_code"
    code = otp.code_at(enrolment.secret, w.clock.now())
    proofs.confirm_totp(code, handle=handle)
    assert proofs.enrolled(handle=handle) == {"totp": "confirmed", "phrase": False}
    with pytest.raises(EnrollmentError, match="already used: wait for the next code") as e:
        proofs.confirm_totp(code, handle=handle)  # the same code, replayed
    assert e.value.reason == "code_replayed"
    w.clock.advance(seconds=30)
    with pytest.raises(EnrollmentError, match="already used"):
        proofs.confirm_totp(code, handle=handle)  # still inside the ±1 window: still refused
    offered = w.issuer.issue(agent_id="a-001", reason="payment_failed", customer_ref=REF)
    assert offered.claims.methods == ("code", "totp")
    kinds = [e.type for e in _events(w, events.TOTP_CONFIRM_FAILED)]
    assert len(kinds) == 3 and _events(w, events.TOTP_CONFIRMED)


def test_a_code_one_step_away_confirms_and_three_steps_away_does_not(
        world: World, proofs: EnrolledProofs) -> None:
    enrolment = proofs.enroll_totp(customer_ref=REF)
    now = world.clock.now()
    with pytest.raises(EnrollmentError, match="does not match"):
        proofs.confirm_totp(otp.code_at(enrolment.secret, now + timedelta(seconds=90)),
                            customer_ref=REF)
    proofs.confirm_totp(otp.code_at(enrolment.secret, now - timedelta(seconds=30)),
                        customer_ref=REF)
    assert proofs.enrolled(customer_ref=REF)["totp"] == "confirmed"


def test_too_many_wrong_codes_discard_a_pending_enrolment(world: World,
                                                         proofs: EnrolledProofs) -> None:
    enrolment = proofs.enroll_totp(customer_ref=REF)
    right = otp.code_at(enrolment.secret, world.clock.now())
    wrong = str((int(right) + 1) % 1_000_000).zfill(6)
    for _ in range(MAX_CONFIRM_FAILURES - 1):
        with pytest.raises(EnrollmentError, match="does not match"):
            proofs.confirm_totp(wrong, customer_ref=REF)
    with pytest.raises(EnrollmentError, match="too many wrong codes") as e:
        proofs.confirm_totp(wrong, customer_ref=REF)
    assert e.value.reason == "too_many_failures"
    assert proofs.enrolled(customer_ref=REF)["totp"] is None
    with pytest.raises(EnrollmentError, match="no app enrolment to confirm"):
        proofs.confirm_totp(right, customer_ref=REF)


def test_re_enrolment_replaces_and_removal_deletes(world: World, proofs: EnrolledProofs) -> None:
    first = _enrol_app(world, proofs)
    second = proofs.enroll_totp(customer_ref=REF)
    assert second.secret != first
    with pytest.raises(EnrollmentError, match="does not match"):
        proofs.confirm_totp(otp.code_at(first, world.clock.now()), customer_ref=REF)
    world.clock.advance(seconds=30)
    proofs.confirm_totp(otp.code_at(second.secret, world.clock.now()), customer_ref=REF)
    assert proofs.remove(customer_ref=REF, kinds=["totp"]) == ["totp"]
    assert proofs.remove(customer_ref=REF) == []
    assert proofs.enrolled(customer_ref=REF) == {"totp": None, "phrase": False}
    call = world.issuer.issue(agent_id="a-001", reason="payment_failed", customer_ref=REF)
    assert call.claims.methods == ("code",)
    assert _events(world, events.PROOF_REMOVED)[0].data["kinds"] == ["totp"]


def test_the_customer_must_be_named_one_way(proofs: EnrolledProofs) -> None:
    with pytest.raises(EnrollmentError, match="customer_ref or by handle"):
        proofs.enroll_totp()
    with pytest.raises(EnrollmentError, match="customer_ref or by handle"):
        proofs.enroll_totp(customer_ref=REF, handle="h_x")
    with pytest.raises(EnrollmentError, match="forgotten") as e:
        proofs.set_phrase("blue heron", handle="h_unknown")
    assert e.value.reason == "forgotten"


# --- phrases ----------------------------------------------------------------------------------


def test_a_phrase_is_set_changed_offered_and_removed(world: World,
                                                      proofs: EnrolledProofs) -> None:
    proofs.set_phrase("blue heron", customer_ref=REF)
    proofs.set_phrase("Ｇｒｅｅｎ   heron", customer_ref=REF)
    call = world.issuer.issue(agent_id="a-001", reason="payment_failed", customer_ref=REF)
    assert call.claims.methods == ("code", "phrase")
    world.issuer.connected(call.ticket_id)
    assert proofs.reveal(call.ticket_id).to_json() == {"phrase": "Green heron"}
    assert proofs.remove(customer_ref=REF, kinds=["phrase"]) == ["phrase"]
    with pytest.raises(PhraseRefused, match="card number"):
        proofs.set_phrase("4111 1111 1111 1111", customer_ref=REF)


# --- reveal -----------------------------------------------------------------------------------


def test_reveal_matches_an_independent_totp_and_logs_no_secret(world: World,
                                                               proofs: EnrolledProofs) -> None:
    w = world
    secret = _enrol_app(w, proofs)
    proofs.set_phrase("blue heron at dawn", customer_ref=REF)
    call = w.issuer.issue(agent_id="a-002", reason="payment_failed", customer_ref=REF)
    assert call.claims.methods == ("code", "totp", "phrase")
    w.issuer.connected(call.ticket_id)
    w.clock.advance(seconds=7)
    shown = proofs.reveal(call.ticket_id, agent_id="a-002", api_key="k1")
    at = int(w.clock.now().timestamp())
    assert shown.app_code == totp_by_hand(key_of(secret), at)
    assert shown.app_code_valid_for == 30 - at % 30
    assert shown.to_json() == {"app_code": shown.app_code,
                               "app_code_valid_for": shown.app_code_valid_for,
                               "app_code_until": "2026-11-23T09:30:30Z",
                               "phrase": "blue heron at dawn"}
    assert shown.app_code not in repr(shown) and "heron" not in repr(shown)
    (code_event,) = _events(w, events.REVEAL_APP_CODE)
    (phrase_event,) = _events(w, events.REVEAL_PHRASE)
    for e in (code_event, phrase_event):
        assert e.data == {"ticket_id": call.ticket_id, "agent_id": "a-002", "api_key": "k1",
                          "what": ["totp", "phrase"], "connected": True}
        assert shown.app_code.encode() not in e.to_bytes() and b"heron" not in e.to_bytes()
    assert not _events(w, events.REVEAL_UNCONNECTED)


def test_no_reveal_before_the_call_is_connected(world: World, proofs: EnrolledProofs) -> None:
    w = world
    proofs.set_phrase("blue heron", customer_ref=REF)
    call = w.issuer.issue(agent_id="a-001", reason="payment_failed", customer_ref=REF)
    with pytest.raises(RevealRefused, match="has not reported this call connected") as e:
        proofs.reveal(call.ticket_id)
    assert e.value.reason == "not_connected"
    (alert,) = _events(w, events.REVEAL_UNCONNECTED)
    assert alert.data["allowed"] is False and not _events(w, events.REVEAL_PHRASE)
    assert proofs.reveal(call.ticket_id, allow_unconnected=True).phrase == "blue heron"
    alerts = _events(w, events.REVEAL_UNCONNECTED)
    assert [a.data["allowed"] for a in alerts] == [False, True]
    assert _events(w, events.REVEAL_PHRASE)[0].data["connected"] is False


def test_reveal_caps_per_customer_and_per_agent(world: World, proofs: EnrolledProofs) -> None:
    w = world
    proofs.set_phrase("blue heron", customer_ref=REF)
    call = w.issuer.issue(agent_id="a-001", reason="payment_failed", customer_ref=REF)
    w.issuer.connected(call.ticket_id)
    limit = w.deployment.config.limits.reveals_per_customer_hour
    assert limit == 3
    for _ in range(limit):
        proofs.reveal(call.ticket_id)
    with pytest.raises(RevealRefused, match=r"revealed 3 times in the last hour, the most "
                                            r"allowed \(3 an hour\)") as e:
        proofs.reveal(call.ticket_id)
    assert e.value.reason == "customer_cap"
    assert _events(w, events.REVEAL_CAPPED)[0].data["cap"] == "customer_cap"
    w.clock.advance(seconds=3600)  # the window rolls on
    call = w.issuer.issue(agent_id="a-001", reason="payment_failed", customer_ref=REF)
    w.issuer.connected(call.ticket_id)
    proofs.reveal(call.ticket_id)

    _limits(w, reveals_per_agent_hour=2, reveals_per_customer_hour=10)
    proofs.set_phrase("green heron", customer_ref="C-2")
    other = w.issuer.issue(agent_id="a-001", reason="payment_failed", customer_ref="C-2")
    w.issuer.connected(other.ticket_id)
    proofs.reveal(other.ticket_id)
    with pytest.raises(RevealRefused, match="agent a-001 has made 2 reveals in the last hour, "
                                            "the most allowed") as e:
        proofs.reveal(other.ticket_id)
    assert e.value.reason == "agent_cap"


def test_reveal_refusals(world: World, proofs: EnrolledProofs) -> None:
    w = world
    with pytest.raises(NotFound):
        proofs.reveal("t_nope")
    bare = w.issuer.issue(agent_id="a-001", reason="payment_failed")
    with pytest.raises(RevealRefused, match="names no customer"):
        proofs.reveal(bare.ticket_id)
    call = w.issuer.issue(agent_id="a-001", reason="payment_failed", customer_ref=REF)
    w.issuer.connected(call.ticket_id)
    with pytest.raises(RevealRefused, match="no app code or phrase enrolled") as e:
        proofs.reveal(call.ticket_id)
    assert e.value.reason == "not_enrolled"
    proofs.enroll_totp(customer_ref=REF)  # pending: still nothing to reveal
    with pytest.raises(RevealRefused, match="nothing to reveal"):
        proofs.reveal(call.ticket_id)
    proofs.set_phrase("blue heron", customer_ref=REF)
    with pytest.raises(RevealRefused, match="not yours") as e:
        proofs.reveal(call.ticket_id, agent_id="a-002")
    assert e.value.reason == "not_your_ticket"
    w.issuer.close(call.ticket_id)
    with pytest.raises(RevealRefused, match="the call is closed") as e:
        proofs.reveal(call.ticket_id)
    assert e.value.reason == "not_live"


def test_a_forgotten_customer_has_nothing_to_reveal(world: World,
                                                    proofs: EnrolledProofs) -> None:
    w = world
    _enrol_app(w, proofs)
    proofs.set_phrase("blue heron", customer_ref=REF)
    token = proofs.create_enrollment(REF)
    call = w.issuer.issue(agent_id="a-001", reason="payment_failed", customer_ref=REF)
    w.issuer.connected(call.ticket_id)
    proofs.reveal(call.ticket_id)
    assert w.admin.forget_customer(REF)
    with pytest.raises(RevealRefused, match="forgotten: nothing is left to reveal") as e:
        proofs.reveal(call.ticket_id)
    assert e.value.reason == "forgotten"
    with w.deployment.store.read() as conn:
        assert conn.execute(select(schema.enrolled_proofs)).all() == []
        assert conn.execute(select(schema.enrollment_tokens)).all() == []
        assert conn.execute(select(schema.reveals.c.handle)).all() == [(None,)]
    with pytest.raises(EnrollmentError, match="not valid"):
        proofs.open_enrollment(token.token)
    assert proofs.enrolled(customer_ref=REF) == {"totp": None, "phrase": False}


def test_a_sealed_secret_moved_to_another_customer_does_not_open(
        world: World, proofs: EnrolledProofs) -> None:
    w = world
    proofs.set_phrase("blue heron", customer_ref=REF)
    call = w.issuer.issue(agent_id="a-001", reason="payment_failed", customer_ref="C-other")
    proofs.set_phrase("other heron", customer_ref="C-other")
    w.issuer.connected(call.ticket_id)
    p = schema.enrolled_proofs
    with w.deployment.store.write() as conn:
        mine = conn.execute(select(p.c.sealed).where(p.c.handle != call.claims.subject)).scalar()
        conn.execute(update(p).where(p.c.handle == call.claims.subject).values(sealed=mine))
    with pytest.raises(SealError, match="does not open"):
        proofs.reveal(call.ticket_id)


# --- the app call status and coverage -----------------------------------------------------------


def test_call_status(world: World, proofs: EnrolledProofs) -> None:
    w = world
    assert proofs.call_status(REF) == {"calling": False}
    with w.deployment.store.read() as conn:
        assert conn.execute(select(schema.customers)).all() == []  # asking creates nothing
    w.issuer.issue(agent_id="a-001", reason="payment_failed", customer_ref="C-someone-else")
    call = w.issuer.issue(agent_id="a-002", reason="payment_failed", customer_ref=REF, ttl=600)
    status = proofs.call_status(REF, lang="zh-Hant")
    assert status == {"calling": True, "agent_name": "陳偉", "department": "帳務部",
                      "reason": "您訂單的付款沒有成功", "reason_code": "payment_failed",
                      "started_at": "2026-11-23T09:30:00Z", "expires_at": "2026-11-23T09:40:00Z"}
    w.issuer.connected(call.ticket_id)
    assert proofs.call_status(REF)["calling"] is True
    w.issuer.close(call.ticket_id)
    assert proofs.call_status(REF) == {"calling": False, "last_call": {
        "at": "2026-11-23T09:30:00Z", "agent_name": "Chen Wei", "department": "Billing",
        "reason": "A payment for your order did not go through",
        "reason_code": "payment_failed"}}
    w.issuer.issue(agent_id="a-001", reason="order_delivery", customer_ref=REF, ttl=600)
    w.clock.advance(seconds=600)
    status = proofs.call_status(REF)  # expired: not calling, and the last call is this one
    assert status["calling"] is False and status["last_call"]["agent_name"] == "Mei Lin"


def test_coverage_lists_every_team_and_the_silent_ones(world: World,
                                                       proofs: EnrolledProofs) -> None:
    w = world
    for agent in ("a-001", "a-001", "a-002"):
        w.issuer.issue(agent_id=agent, reason="payment_failed")
    w.clock.advance(seconds=86400)
    w.issuer.issue(agent_id="a-003", reason="payment_failed")
    day = proofs.coverage(date(2026, 11, 23))
    assert day == {"day": "2026-11-23", "departments": [
        {"department": "Billing", "tickets": 1, "agents_issuing": 1, "agents": 1},
        {"department": "Customer Care", "tickets": 2, "agents_issuing": 1, "agents": 1},
        {"department": "Deliveries", "tickets": 0, "agents_issuing": 0, "agents": 1},
    ], "silent": ["Deliveries"]}
    assert proofs.coverage(date(2026, 11, 24))["silent"] == ["Billing", "Customer Care"]
