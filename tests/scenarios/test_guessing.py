"""Scenario 4 — guessing codes.

The scam: no leak, no mule — the scammer just types codes into the genuine check page, hoping
one of them is a live ticket's, so that he can read it to a victim or learn whom the company is
calling. He knows the format (nine digits, the last a check digit anyone can compute), so every
guess he makes is well-formed.

The mechanism: 10^8 possible codes against a few hundred live ones (the hit probability per
guess is worked out in the threat model, §5); failed lookups are limited per client address
(``client_failure_limit``, 30 per 15 minutes), and past the limit even a right code gets the failure
page, so one client can neither confirm nor keep guessing — clearing cookies does not help, the
limit follows the address. Many clients together run into the global budget of failed lookups
per minute (``global_failure_budget``): the first lookup over it starts a wave, which for
``breaker_cooldown_seconds`` refuses the clients and networks with recent failures (while clean
networks still check — the last test) and puts one ``budget_tripped`` alert on the fraud desk at
once. A genuine customer caught in it (here she shares the guessers' network) is told to hang
up and call the official number — a safe failure — and her ticket is untouched, so it confirms
once the wave is over.

Residual risk: a guesser with hundreds of addresses who stays under the budget makes up to 600
guesses a minute, about 0.1 expected hits an hour at 300 live tickets, and a hit still needs the
victim's last four digits and the agent's check word; starting a wave on purpose refuses only the
networks it came from, with a safe failure (threat model §5).
"""

from __future__ import annotations

from collections.abc import Callable

import requests

from callproof.fraud import FraudDesk

from .conftest import Customer, Instance, guesses, per_client_limit


def guess(customer: Customer, code: str) -> str:
    """One guess from the guesser's browser; the page kind it got."""
    return customer.type_code(code).kind


def test_one_client_guessing_is_limited_and_never_confirmed(instance: Instance) -> None:
    dialer = instance.dialer()
    call = dialer.issue()  # a genuine call to a customer, live while the guesser works
    live = call["code"]
    guesser = instance.customer()
    made_up = guesses({live})
    limit = per_client_limit(instance)
    assert limit == 30  # the default the threat model's arithmetic uses

    assert [guess(guesser, next(made_up)) for _ in range(limit)] == ["failed"] * limit
    # Past the limit, even the live code (a lucky guess, or one he overheard) gets the failure
    # page — and so it does from a fresh browser with no cookies at the same address.
    assert guess(guesser, live) == "failed"
    fresh = Customer(instance.url, address=guesser.address, http=requests.Session())
    assert guess(fresh, live) == "failed"
    assert dialer.status(call["ticket_id"])["state"] == "issued"  # he claimed nothing

    # One client cannot trip the breaker: the fraud desk sees his failed lookups, no alert.
    desk = FraudDesk(instance.services().deployment)
    assert desk.failed_lookups_per_hour(hours=1)[-1].count == limit
    assert [a.kind for a in desk.alerts()] == []
    # The genuine customer, on her own connection, is not affected.
    customer = instance.customer()
    assert customer.type_code(call["code_display"]).kind == "number"
    assert customer.answer_number(yes=True).kind == "word"
    assert customer.tap_word(dialer.check_word(call["ticket_id"])).kind == "confirmed"


def test_many_clients_guessing_trip_the_global_budget_and_alert_the_fraud_desk_at_once(
        serve: Callable[..., Instance]) -> None:
    budget = 20  # an operator's config.toml; 600 per minute by default (threat model §5)
    instance = serve(limits={"global_failure_budget": budget})
    cooldown = instance.services().deployment.config.limits.breaker_cooldown_seconds
    dialer = instance.dialer()
    call = dialer.issue()
    made_up = guesses({call["code"]})
    desk = FraudDesk(instance.services().deployment)
    fraud_team = instance.desk()  # the fraud desk's page, open in a browser

    guessers = [instance.customer() for _ in range(7)]  # 7 addresses, 3 guesses or fewer each
    pages = [guess(guessers[i % 7], next(made_up)) for i in range(budget)]
    assert pages == ["failed"] * budget and desk.alerts() == []  # at the budget: no alert yet
    assert guess(guessers[0], next(made_up)) == "failed"  # one over the budget
    [alert] = desk.alerts()  # at once, on the request that tripped it
    assert alert.kind == "budget_tripped" and alert.ticket_id is None
    assert alert.details["count"] == budget + 1 and alert.details["budget"] == budget
    assert alert.details["open_until"] == \
        int(instance.clock.now().timestamp()) + cooldown
    # The desk's live page has it on its next poll, in words, with no customer in it.
    [shown] = fraud_team.alerts()
    assert shown["kind"] == "budget_tripped" and shown["idx"] == alert.idx
    assert "Hang up" not in str(shown) and call["code"] not in str(shown)

    # While the wave lasts, every lookup from the guessers' network fails safely — the genuine
    # customer's right code too: she is told to hang up and call the official number, never to
    # trust the caller.
    customer = instance.customer()
    page = customer.type_code(call["code_display"])
    assert page.kind == "failed"
    words = page.visible_text()
    assert "Hang up now." in words
    assert instance.services().deployment.config.company.official_number in words
    assert dialer.status(call["ticket_id"])["state"] == "issued"  # her ticket is untouched

    # Once the wave is over, her code confirms; the guessers never confirmed anything.
    instance.clock.advance(seconds=cooldown)
    assert customer.type_code(call["code_display"]).kind == "number"
    assert customer.answer_number(yes=True).kind == "word"
    assert customer.tap_word(dialer.check_word(call["ticket_id"])).kind == "confirmed"
    assert [e.type for e in instance.events() if e.type == "ticket.verified"] == \
        ["ticket.verified"]


def test_a_flood_from_a_few_networks_does_not_stop_a_customer_on_another(
        serve: Callable[..., Instance]) -> None:
    """Hardening item 1: a wave of wrong codes from many addresses in three networks spends the
    deployment's budget — one alert, and a refused wave — yet a genuine customer on another
    network checks her call during it; a newcomer on a flooding network is refused safely."""
    budget = 30
    instance = serve(limits={"global_failure_budget": budget})
    dialer = instance.dialer()
    call = dialer.issue()
    made_up = guesses({call["code"]})
    desk = FraudDesk(instance.services().deployment)
    networks = ("192.0.2", "198.51.100", "100.64.0")
    flood = [instance.customer(address=f"{net}.{i}") for net in networks for i in range(1, 12)]
    pages = [guess(flood[i % len(flood)], next(made_up)) for i in range(budget + 1)]
    assert set(pages) == {"failed"}
    [alert] = desk.alerts()
    assert alert.kind == "budget_tripped"  # the fraud desk sees the wave at once
    assert instance.services().flow.wave() is not None  # and so does the agents' console

    newcomer = instance.customer(address="198.51.100.200")  # a flooding network: refused
    assert guess(newcomer, call["code_display"]) == "failed"
    customer = instance.customer(address="203.0.113.77")  # another network: checks as usual
    assert customer.type_code(call["code_display"]).kind == "number"
    assert customer.answer_number(yes=True).kind == "word"
    assert customer.tap_word(dialer.check_word(call["ticket_id"])).kind == "confirmed"
    assert len(desk.alerts()) == 1  # one wave, one alert
