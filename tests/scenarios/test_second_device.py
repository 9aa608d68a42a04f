"""Scenario 7 — a code entered on a second device.

The scam: a scammer relaying a genuine code (scenario 5) wants to see what the victim's page
will show — the digits, the agent's name, the reason — so he types the code on his own phone
first, then reads it to the victim; or the victim types it first and he, or his mule, types it
too, to follow along or to get ahead of her.

The mechanism: the first lookup claims the ticket for that browser (a first-party, HttpOnly
cookie). When the code arrives from any other browser, the call is being relayed: the ticket
fails at once, whichever device came first. The second device gets the one failure page (hang
up, call the official number — every failure shows the same page, DESIGN §3.1), the first
device's next step fails too, the agent's console says "The code was entered on a second
device.", and the fraud desk gets a ``claimed_elsewhere`` alert. The same browser typing the code
again (a reload, a second try) is not a second device and carries on where it was.

Residual risk: a customer who switches browsers on her own phone mid-check (say, from an app's
built-in browser to the phone's browser) is a second device too; she is told to hang up and call
the official number — a safe failure, not a false confirmation.
"""

from __future__ import annotations

import pytest

from callproof.fraud import FraudDesk

from .conftest import Customer, Instance

MULE_PHONE = "+886987654321"


@pytest.mark.parametrize("scammer_first", [True, False], ids=["scammer-first", "victim-first"])
def test_a_second_device_fails_the_ticket_and_alerts_the_agent_and_the_fraud_desk(
        instance: Instance, scammer_first: bool) -> None:
    console = instance.console()
    ticket_id, code = console.start_call(phone=MULE_PHONE)
    scammer, victim = instance.customer(), instance.customer()
    first, second = (scammer, victim) if scammer_first else (victim, scammer)

    assert first.type_code(code).kind == "number"
    page = second.type_code(code)
    assert page.kind == "failed"
    words = page.visible_text()
    assert "We cannot confirm this call." in words and "Hang up now." in words
    assert "This call code was already checked on another device." in words
    assert instance.services().deployment.config.company.official_number in words

    # The device that came first is stopped too: its next step is the failure page (which has
    # nothing to say of another device: for all it knows, it is the other one).
    page = first.answer_number(yes=True)
    assert page.kind == "failed" and "another device" not in page.visible_text()
    assert first.type_code(code).kind == "failed"

    seen = console.status(ticket_id)
    assert seen["state"] == "failed" and seen["final"] and seen["check_word"] is None
    assert [a["text"] for a in seen["alerts"]] == ["The code was entered on a second device."]
    [alert] = [a for a in FraudDesk(instance.services().deployment).alerts()
               if a.ticket_id == ticket_id]
    assert (alert.kind, alert.agent_id, alert.reason) == \
        ("claimed_elsewhere", "a-001", "payment_failed")
    assert "ticket.verified" not in instance.event_types(ticket_id=ticket_id)


def test_the_same_browser_typing_the_code_again_is_not_a_second_device(
        instance: Instance) -> None:
    """No false alarm: a customer who goes back and types the code again just carries on."""
    dialer = instance.dialer()
    call = dialer.issue()
    customer = instance.customer()
    assert customer.type_code(call["code_display"]).kind == "number"
    assert customer.type_code(call["code_display"]).kind == "number"  # typed again
    assert customer.answer_number(yes=True).kind == "word"
    assert customer.type_code(call["code_display"]).kind == "word"  # and again, further on
    assert customer.tap_word(dialer.check_word(call["ticket_id"])).kind == "confirmed"
    assert dialer.status(call["ticket_id"])["alerts"] == []
    assert not [a for a in FraudDesk(instance.services().deployment).alerts()
                if a.ticket_id == call["ticket_id"]]


def test_a_second_device_after_the_confirmation_cannot_ride_on_it(instance: Instance) -> None:
    """A scammer who gets the code after the genuine customer confirmed gets nothing from it —
    and the call is flagged, because a confirmed call's code showing up elsewhere is a relay."""
    dialer = instance.dialer()
    call = dialer.issue()
    customer = instance.customer()
    customer.type_code(call["code_display"])
    customer.answer_number(yes=True)
    assert customer.tap_word(dialer.check_word(call["ticket_id"])).kind == "confirmed"

    late = Customer(instance.url)  # another phone, another address
    assert late.type_code(call["code_display"]).kind == "failed"
    status = dialer.status(call["ticket_id"])
    assert [a["type"] for a in status["alerts"]] == ["claimed_elsewhere"]
