"""Scenario 5 — a genuine code relayed through a mule.

The scam: the scammer wants a code that really confirms, so he gets the company to call a phone
he controls — the mule (an order placed with the mule's number, a call-back request). The
company's agent calls the mule and reads the genuine call code; the mule passes it to the
scammer, who is on another line with the victim and says: "check it yourself, on the shop's own
page". She types it on the genuine page, and the code is genuine.

The mechanism: the ticket is signed for the number the dialer called. The page's first question
is "Does the phone in your hand end in 4321?" — the mule's last four digits, not hers — and it
says that if it is not the phone in her hand, the call is not from us. Her "No" ends the ticket
at once: she is told to hang up and call the official number; the agent's console (and the
dialer's API) says the customer denied the phone; the fraud desk gets a ``number_denied`` alert
naming the ticket, the agent and the reason. The check word is never shown to anyone, and the
code is dead for the mule as well.

The test plays the agent (console), the mule and the victim (two browsers on two addresses), in
the three languages of the page.

Residual risk: a victim coached to tap "Yes" for digits that are not hers, while the mule relays
the check word the genuine agent says to him, still gets a confirmation (threat model A2).
"""

from __future__ import annotations

import json

import pytest

from callproof.fraud import FraudDesk

from .conftest import CUSTOMER_PHONE, Instance, said

#: The mule's phone: the number the company's dialer really called. The victim's ends in 5678.
MULE_PHONE = "+886987654321"


@pytest.mark.parametrize("lang", ["en", "zh-Hant", "zh-Hans"])
def test_the_victims_no_ends_the_ticket_and_alerts_the_agent_and_the_fraud_desk(
        instance: Instance, lang: str) -> None:
    console = instance.console()
    ticket_id, code = console.start_call(phone=MULE_PHONE)  # the agent calls the mule
    victim = instance.customer(lang=lang)  # the scammer reads her the mule's code

    question = victim.type_code(code)
    assert question.kind == "number"
    words = question.visible_text()
    assert said(instance, "Does the phone in your hand end in %(digits)s?", lang,
                digits="4321") in words
    assert said(instance, "If it is not the phone in your hand, this call is not from us. "
                          "Tap No.", lang) in words
    assert said(instance, "Does the phone in your hand end in %(digits)s?", lang,
                digits=CUSTOMER_PHONE[-4:]) not in words  # not her phone's digits

    page = victim.answer_number(yes=False)
    assert page.kind == "failed"
    words = page.visible_text()
    assert said(instance, "We cannot confirm this call.", lang) in words
    assert said(instance, "Hang up now.", lang) in words
    assert instance.services().deployment.config.company.official_number in words

    # The agent on the mule's call sees at once why the call failed, and gets no check word.
    seen = console.status(ticket_id)
    assert seen["state"] == "failed" and seen["final"] and seen["check_word"] is None
    assert [a["text"] for a in seen["alerts"]] == ["The customer said the phone is not theirs."]

    # The fraud desk sees the alert, with the ticket, the agent and the reason — and no number.
    [alert] = [a for a in FraudDesk(instance.services().deployment).alerts()
               if a.ticket_id == ticket_id]
    assert (alert.kind, alert.agent_id, alert.reason) == \
        ("number_denied", "a-001", "payment_failed")
    wire = json.dumps({k: v for k, v in alert.to_json().items() if k != "ticket_id"})
    assert "4321" not in wire and "5678" not in wire and "+886" not in wire


def test_after_the_no_the_relayed_code_confirms_for_nobody(instance: Instance) -> None:
    dialer = instance.dialer()
    call = dialer.issue(phone=MULE_PHONE)  # the dialer places the call to the mule
    victim = instance.customer()
    assert victim.type_code(call["code_display"]).kind == "number"
    assert victim.answer_number(yes=False).kind == "failed"

    # The scammer tries again: the mule's own browser, the victim's browser, a fresh browser.
    for who in (instance.customer(), victim, instance.customer()):
        assert who.type_code(call["code_display"]).kind == "failed"
    # The dialer's view: failed, the customer denied the number, and still no check word.
    status = dialer.status(call["ticket_id"])
    assert status["state"] == "failed" and "check_word" not in status
    assert [a["type"] for a in status["alerts"]] == ["number_denied"]
    types = instance.event_types(ticket_id=call["ticket_id"])
    assert "ticket.verified" not in types and "ticket.number_confirmed" not in types
