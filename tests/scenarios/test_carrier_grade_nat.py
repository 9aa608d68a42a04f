"""Scenario 13 — carrier-grade NAT.

The situation: a mobile carrier puts hundreds of its customers behind one public IPv4 address.
The check page limits failed lookups per address, so a limit sized badly would lock genuine
customers out — and worse, a locked-out customer told anything but "hang up" is a gift to a
scammer ("the page is busy, just stay on the line with me"). A guesser, on the other side, can
rent many addresses, so the per-address limit cannot be what stops him.

The mechanism: the per-address limit (``client_failure_limit``, 30 failed lookups per 15
minutes, counted by the library in the shared database) is sized in the threat model for about
1,000 customers per address; it counts only *failed* lookups — a typo (wrong check digit) and a
success are free — so dozens of customers behind one address who each make a typo and then
confirm never use it up. If an address does reach it, a genuine customer behind it gets exactly
the page every failure gets (hang up, call the official number), word for word, never a "try
again later"; her ticket stays untouched and confirms from another connection. A guesser spread
over many addresses, each far under its limit, is stopped by the global budget instead, which
alerts the fraud desk.

Residual risk: whoever shares an address with a guesser (or fails 30 times with others behind it
within 15 minutes) cannot check calls from that address for up to 15 minutes — a local, safe
failure; the customer calls the official number or checks over another connection.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from callproof.fraud import FraudDesk

from .conftest import Instance, guesses, new_address, per_client_limit, said


def typo_of(code: str) -> str:
    """The code with its check digit wrong: what a customer's slip of a finger gives."""
    return code[:-1] + str((int(code[-1]) + 1) % 10)


def test_customers_behind_one_address_who_mistype_and_confirm_never_use_up_its_limit(
        serve: Callable[..., Instance]) -> None:
    # Many calls from one agent in a minute: lift the per-agent issuing limit for this test.
    instance = serve(AGENT_ISSUE_LIMIT="1000 per minute")
    limit = per_client_limit(instance)
    nat = new_address()
    dialer = instance.dialer()
    for _ in range(limit + 1):  # more customers behind the NAT address than the limit
        call = dialer.issue()
        customer = instance.customer(address=nat)
        typo = customer.type_code(typo_of(call["code"]))
        assert typo.kind == "index" and typo.status == 400
        assert "One digit of the call code is not right." in typo.visible_text()
        assert customer.type_code(call["code_display"]).kind == "number"
        assert customer.answer_number(yes=True).kind == "word"
        assert customer.tap_word(dialer.check_word(call["ticket_id"])).kind == "confirmed"
    desk = FraudDesk(instance.services().deployment)
    assert desk.failed_lookups_per_hour(hours=1)[-1].count == 0


@pytest.mark.parametrize("lang", ["en", "zh-Hant", "zh-Hans"])
def test_a_genuine_customer_behind_a_limited_address_gets_the_safe_failure_and_no_hint(
        instance: Instance, lang: str) -> None:
    dialer = instance.dialer()
    call = dialer.issue()
    nat = new_address()
    guesser = instance.customer(address=nat)  # someone behind the same carrier address
    made_up = guesses({call["code"]})
    for _ in range(per_client_limit(instance)):
        assert guesser.type_code(next(made_up)).kind == "failed"

    customer = instance.customer(address=nat, lang=lang)
    limited = customer.type_code(call["code_display"])  # her genuine, live code
    assert limited.kind == "failed"
    words = limited.visible_text()
    assert said(instance, "We cannot confirm this call.", lang) in words
    assert said(instance, "Hang up now.", lang) in words
    assert said(instance, "A caller who says this check is broken is lying.", lang) in words
    assert instance.services().deployment.config.company.official_number in words
    # Word for word the page any failure gets: nothing about limits, waiting or trying again
    # that a caller could use ("it's busy, stay on the line").
    elsewhere = instance.customer(lang=lang).type_code(next(made_up))
    assert elsewhere.kind == "failed" and words == elsewhere.visible_text()

    # Her ticket is untouched: over another connection (her home Wi-Fi) it confirms.
    assert dialer.status(call["ticket_id"])["state"] == "issued"
    at_home = instance.customer(lang=lang)
    assert at_home.type_code(call["code_display"]).kind == "number"
    assert at_home.answer_number(yes=True).kind == "word"


def test_a_guesser_with_many_addresses_is_stopped_by_the_global_budget_not_per_address(
        serve: Callable[..., Instance]) -> None:
    budget = 20  # config.toml's global_failure_budget; 600 by default
    instance = serve(limits={"global_failure_budget": budget})
    dialer = instance.dialer()
    call = dialer.issue()
    made_up = guesses({call["code"]})
    desk = FraudDesk(instance.services().deployment)
    # One guess per address: each address stays at 1 of its 30, far from the per-address limit.
    pages = [instance.customer().type_code(next(made_up)).kind for _ in range(budget + 1)]
    assert pages == ["failed"] * (budget + 1)
    assert desk.failed_lookups_per_hour(hours=1)[-1].count == budget + 1  # none limited early
    assert [a.kind for a in desk.alerts()] == ["budget_tripped"]
    # Now no address gets through, however fresh — his next one included, and the live code.
    assert instance.customer().type_code(call["code_display"]).kind == "failed"
    assert dialer.status(call["ticket_id"])["state"] == "issued"
