"""Scenario 8 — replay after the call.

The company called; the customer checked the code and the page said "This is Example Shop."
Someone heard the code — a scammer sitting next to the customer, a recording, a screenshot of the
agent's screen, or the customer who read it out to "the bank" afterwards. Twenty minutes later
the scammer calls the same customer (or another one) and says: "This is Example Shop again, type
the code from earlier — or just reload the page you still have open, it says it's us."

The mechanism: the dialer reports the hang-up (``POST /api/v1/tickets/{id}/close``, or the
agent's Close button in the console) and from that moment the ticket is ``closed``: its code
confirms nothing on any device, the customer's own open page no longer shows "This is …", and a
code nobody checked during the call is dead too. If the dialer never reports the hang-up, the
code still stops being accepted once its 10-minute window is over.

The tests play the call, the hang-up and the replay over HTTP against a served instance and read
what the customer sees (the one failure page, in three languages) and what the agent sees.

Residual risk: between the end of the call and the dialer's hang-up report — and, for a dialer
that never reports it, for the rest of the 10-minute code window — an unchecked code can still be
claimed (once, on one device; a second device ends it, scenario 7).
"""

from __future__ import annotations

import re

import pytest

from .conftest import Customer, Dialer, Instance, Page

# The failure page's first words, as the customer reads them in each language (GLOSSARY.md).
CANNOT_CONFIRM = {"en": ("We cannot confirm this call.", "Hang up now."),
                  "zh-Hant": ("無法確認這通電話。", "請立即掛斷電話。"),
                  "zh-Hans": ("无法确认这通电话。", "请立即挂断电话。")}


def _confirmed_call(instance: Instance, dialer: Dialer, customer: Customer) -> str:
    """The genuine call, checked to the end by the customer; returns its ticket id."""
    call = dialer.issue()
    assert dialer.connected(call["ticket_id"]).status_code == 200
    assert customer.type_code(call["code_display"]).kind == "number"
    assert customer.answer_number(yes=True).kind == "word"
    page = customer.tap_word(dialer.check_word(call["ticket_id"]))
    assert page.kind == "confirmed"
    assert "This is " + instance.services().deployment.config.company.name in \
        page.visible_text()
    ticket_id: str = call["ticket_id"]
    return ticket_id


def _says_cannot_confirm(page: Page, lang: str, official_number: str) -> None:
    assert page.kind == "failed", page.visible_text()[:300]
    words = page.visible_text()
    for sentence in CANNOT_CONFIRM[lang]:
        assert sentence in words
    assert official_number in words
    assert not re.search(r"This is |這是|这是", words), "a failure never says who is calling"


@pytest.mark.parametrize("lang", ["en", "zh-Hant", "zh-Hans"])
def test_after_the_hang_up_the_code_confirms_nothing_on_any_device(instance: Instance,
                                                                   lang: str) -> None:
    dialer = instance.dialer()
    customer = instance.customer(lang=lang)
    call = dialer.issue()
    code = call["code_display"]
    assert customer.type_code(code).kind == "number"
    assert customer.answer_number(yes=True).kind == "word"
    said = dialer.call("GET", f"/tickets/{call['ticket_id']}?lang={lang}").json()
    assert customer.tap_word(said["check_word"]["text"]).kind == "confirmed"

    hung_up = dialer.close(call["ticket_id"])
    assert hung_up.status_code == 200 and hung_up.json()["state"] == "closed"

    official = instance.services().deployment.config.company.official_number
    # The scammer, on his own phone, with the code he overheard.
    _says_cannot_confirm(instance.customer(lang=lang).type_code(code), lang, official)
    # The customer, told by the scammer to type "the code from earlier" again.
    _says_cannot_confirm(customer.type_code(code), lang, official)
    # The same digits typed the way a coached victim might: full-width, with dashes.
    wide = str.maketrans("0123456789", "０１２３４５６７８９")
    fullwidth = code.replace(" ", "－").translate(wide)
    _says_cannot_confirm(instance.customer(lang=lang).type_code(fullwidth), lang, official)
    types = instance.event_types(ticket_id=call["ticket_id"])
    assert types[-1] == "ticket.closed", "nothing happened to the ticket after the hang-up"


def test_the_customers_open_confirmed_page_stops_saying_it_is_us_after_the_hang_up(
        instance: Instance) -> None:
    """"Just reload the page you still have open": the reload gets the failure page."""
    dialer, customer = instance.dialer(), instance.customer()
    ticket_id = _confirmed_call(instance, dialer, customer)
    shown_again = customer.open(f"/verify/step?t={ticket_id}")
    assert shown_again.kind == "confirmed", "during the call a reload shows the confirmation"

    assert dialer.close(ticket_id).json()["state"] == "closed"
    official = instance.services().deployment.config.company.official_number
    _says_cannot_confirm(customer.open(f"/verify/step?t={ticket_id}"), "en", official)
    # The agent's screen says the call is over; the hang-up is on the record with the dialer's key.
    assert dialer.status(ticket_id)["state"] == "closed"
    closed = [e for e in instance.events(ticket_id=ticket_id) if e.type == "ticket.closed"]
    assert len(closed) == 1 and closed[0].data.get("api_key")


def test_a_code_nobody_checked_during_the_call_is_dead_after_the_hang_up(
        instance: Instance) -> None:
    """The agent read the code, the customer never typed it; the scammer types it later."""
    dialer = instance.dialer()
    call = dialer.issue()
    dialer.connected(call["ticket_id"])
    instance.clock.advance(seconds=90)
    assert dialer.close(call["ticket_id"]).json()["state"] == "closed"
    instance.clock.advance(seconds=60)  # well inside the code's 10-minute window

    scammer = instance.customer()
    official = instance.services().deployment.config.company.official_number
    _says_cannot_confirm(scammer.type_code(call["code_display"]), "en", official)
    types = instance.event_types(ticket_id=call["ticket_id"])
    assert "ticket.claimed" not in types, "the dead code claimed nothing"
    # Closing twice is refused plainly; the hang-up stays the last word.
    again = dialer.close(call["ticket_id"])
    assert again.status_code == 409 and again.json()["error"] == "wrong_state"


def test_the_agents_close_button_ends_the_code_the_same_way(instance: Instance) -> None:
    console = instance.console()
    ticket_id, code = console.start_call()
    page = console.http.get(f"{instance.url}/console/tickets/{ticket_id}", timeout=30).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    closed = console.http.post(f"{instance.url}/console/tickets/{ticket_id}/close",
                               data={"csrf_token": token.group(1)}, timeout=30)
    assert closed.status_code == 200 and "This call is closed." in closed.text
    assert console.status(ticket_id)["state"] == "closed"
    official = instance.services().deployment.config.company.official_number
    _says_cannot_confirm(instance.customer().type_code(code), "en", official)


def test_without_a_hang_up_report_the_code_still_dies_when_its_window_ends(
        instance: Instance) -> None:
    """A dialer that never reports the hang-up: the 10-minute code window is the backstop."""
    dialer = instance.dialer()
    call = dialer.issue()
    window = instance.services().deployment.config.limits.code_window_seconds
    instance.clock.advance(seconds=window)
    official = instance.services().deployment.config.company.official_number
    _says_cannot_confirm(instance.customer().type_code(call["code_display"]), "en", official)
    assert "ticket.claimed" not in instance.event_types(ticket_id=call["ticket_id"])
