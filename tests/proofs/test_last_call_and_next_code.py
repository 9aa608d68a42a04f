"""The app call status's negative with its history, and the next app code near a step's end
(experience issue 14 items 12 and 15)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callproof.enrollment import LAST_CALL_DAYS, NEXT_CODE_BELOW, EnrolledProofs
from callproof.proofs import totp as otp

from ..cli._helpers import callproof_over, ok, refused
from ..conftest import World
from .otp_by_hand import key_of
from .otp_by_hand import totp as totp_by_hand

REF = "C-1001"


@pytest.fixture
def proofs(world: World) -> EnrolledProofs:
    return EnrolledProofs(world.deployment)


def test_not_calling_names_the_last_call_of_the_last_30_days_in_the_language(
        world: World, proofs: EnrolledProofs) -> None:
    w = world
    w.admin.set_agent("a-001", names={"zh-Hant": "林美玲", "zh-Hans": "林美玲"},
                      department_names={"zh-Hant": "客服部", "zh-Hans": "客服中心"})
    call = w.issuer.issue(agent_id="a-001", reason="payment_failed", customer_ref=REF)
    w.issuer.close(call.ticket_id)
    w.clock.advance(seconds=3 * 86400)
    assert proofs.call_status(REF, lang="zh-Hant") == {"calling": False, "last_call": {
        "at": "2026-11-23T09:30:00Z", "agent_name": "林美玲", "department": "客服部",
        "reason": "您訂單的付款沒有成功", "reason_code": "payment_failed"}}
    last = proofs.call_status(REF, lang="zh-Hans")["last_call"]
    assert (last["agent_name"], last["department"]) == ("林美玲", "客服中心")
    last = proofs.call_status(REF)["last_call"]
    assert (last["agent_name"], last["department"]) == ("Mei Lin", "Customer Care")
    # Older than 30 days: the plain negative.
    w.clock.advance(seconds=(LAST_CALL_DAYS - 3) * 86400)
    assert proofs.call_status(REF) == {"calling": False}


def test_a_withdrawn_ticket_is_no_call_and_a_live_one_is_calling(
        world: World, proofs: EnrolledProofs) -> None:
    w = world
    first = w.issuer.issue(agent_id="a-002", reason="payment_failed", customer_ref=REF)
    w.issuer.close(first.ticket_id)
    w.clock.advance(seconds=60)
    wrong = w.issuer.issue(agent_id="a-001", reason="order_delivery", customer_ref=REF)
    w.issuer.revoke_ticket(wrong.ticket_id)
    # The withdrawn one is skipped: the last call is Chen Wei's.
    assert proofs.call_status(REF)["last_call"]["agent_name"] == "Chen Wei"
    w.issuer.issue(agent_id="a-001", reason="order_delivery", customer_ref=REF)
    now = proofs.call_status(REF)
    assert now["calling"] is True and "last_call" not in now
    assert now["agent_name"] == "Mei Lin"


def test_the_call_status_of_someone_else_says_nothing_of_this_customer(
        world: World, proofs: EnrolledProofs) -> None:
    w = world
    call = w.issuer.issue(agent_id="a-001", reason="payment_failed", customer_ref="C-other")
    w.issuer.close(call.ticket_id)
    assert proofs.call_status(REF) == {"calling": False}


def _enrolled_call(w: World, proofs: EnrolledProofs) -> tuple[str, str]:
    enrolment = proofs.enroll_totp(customer_ref=REF)
    proofs.confirm_totp(otp.code_at(enrolment.secret, w.clock.now()), customer_ref=REF)
    call = w.issuer.issue(agent_id="a-001", reason="payment_failed", customer_ref=REF)
    w.issuer.connected(call.ticket_id)
    return enrolment.secret, call.ticket_id


@pytest.mark.parametrize("into_step", [26, 29], ids=["4s-left", "1s-left"])
def test_a_code_about_to_change_comes_with_the_next_one(
        world: World, proofs: EnrolledProofs, into_step: int) -> None:
    w = world
    secret, ticket_id = _enrolled_call(w, proofs)
    w.clock.advance(seconds=into_step)  # T0 starts a step
    shown = proofs.reveal(ticket_id, agent_id="a-001")
    at = int(w.clock.now().timestamp())
    assert shown.app_code_valid_for == 30 - into_step < NEXT_CODE_BELOW
    assert shown.app_code == totp_by_hand(key_of(secret), at)
    # The next step's code, computed independently, and until when it holds.
    assert shown.next_app_code == totp_by_hand(key_of(secret), at + 30 - into_step)
    assert shown.to_json()["app_code_until"] == "2026-11-23T09:30:30Z"
    assert shown.to_json()["next_app_code_until"] == "2026-11-23T09:31:00Z"
    assert shown.next_app_code not in repr(shown)


def test_a_code_with_time_left_comes_alone(world: World, proofs: EnrolledProofs) -> None:
    w = world
    _secret, ticket_id = _enrolled_call(w, proofs)
    w.clock.advance(seconds=30 + 30 - NEXT_CODE_BELOW)  # exactly 5 s left: enough
    shown = proofs.reveal(ticket_id, agent_id="a-001").to_json()
    assert shown["app_code_valid_for"] == NEXT_CODE_BELOW
    assert "next_app_code" not in shown and "next_app_code_until" not in shown


def test_the_cli_call_status_names_the_last_call(tmp_path: Path, backend: str) -> None:
    run = callproof_over(tmp_path / "data", backend)
    ok(run("agents", "set", "a-002", "--name-zh-Hant", "陳偉"))
    call = json.loads(ok(run("issue", "--agent-id", "a-002", "--reason", "payment_failed",
                             "--customer", REF, "--json")).output)
    assert json.loads(ok(run("call-status", "--customer", REF)).output)["calling"] is True
    ok(run("tickets", "close", call["ticket_id"]))
    status = json.loads(ok(run("call-status", "--customer", REF, "--lang", "zh-Hant")).output)
    assert status["calling"] is False
    assert status["last_call"]["agent_name"] == "陳偉"
    assert status["last_call"]["reason"] == "您訂單的付款沒有成功"
    refused(run("call-status", "--customer", " "), "the customer ref must be 1–256 characters")
