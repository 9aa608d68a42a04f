"""Scenario 1 — leaked order details, no ticket.

A scammer bought the shop's leaked order data: name, order, amount, the phone number. He calls,
quotes the order perfectly, and asks the customer to "check on our website". With no ticket there
is no code the page can confirm: whatever digits he makes up, the customer gets the one safe page
(hang up, call the official number) and the attempt is counted as a failed lookup.
"""

from __future__ import annotations

from callproof.protocol.codes import damm_digit

from .conftest import Instance


def test_made_up_codes_never_confirm_and_every_one_gets_the_safe_page(instance: Instance) -> None:
    customer = instance.customer()
    # A code with a valid check digit (a scammer can learn the format from any genuine call).
    made_up = "12345678" + damm_digit("12345678")
    page = customer.type_code(made_up)
    assert page.kind == "failed"
    words = page.visible_text()
    assert "We cannot confirm this call." in words and "Hang up now." in words
    assert instance.services().deployment.config.company.official_number in words
    assert "ticket.verified" not in instance.event_types()


def test_the_genuine_call_confirms_where_the_scammers_cannot(instance: Instance) -> None:
    """The contrast the customer relies on: the company's own call, with its ticket, confirms."""
    dialer, customer = instance.dialer(), instance.customer()
    call = dialer.issue()
    assert customer.type_code(call["code_display"]).kind == "number"
    assert customer.answer_number(yes=True).kind == "word"
    assert customer.tap_word(dialer.check_word(call["ticket_id"])).kind == "confirmed"

    console = instance.console()
    ticket_id, code = console.start_call()
    other = instance.customer()
    assert other.type_code(code).kind == "number"
    assert other.answer_number(yes=True).kind == "word"
    word = console.status(ticket_id)["check_word"]["text"]
    assert other.tap_word(word).kind == "confirmed"
