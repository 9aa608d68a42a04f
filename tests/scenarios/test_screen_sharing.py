"""Scenario 6 — the scammer sees the victim's screen.

The scam: "share your screen so I can guide you" (or a remote-control app). The scammer relays a
genuine code from a call the company placed to his mule (scenario 5) and coaches the victim to
tap "Yes" at the phone question. Now he watches her page and waits for the check word, to tell
her which one to tap.

The mechanism: the check-word page shows the choices (six by default), and nothing on it — not
the order, not the markup, not a page shown again in another language — tells which one is right:
only the genuine agent's screen shows that, and the genuine agent is talking to the mule. So the
scammer can only guess, and a wrong pick ends the ticket at once: the failure page, an alert on
the agent's console and the dialer's API, a ``word_wrong`` alert on the fraud desk, and no second
try. The confirmed and failure pages also list screen sharing among what the company never asks
for, in all three languages.

Residual risk: a blind pick is right one time in six (``word_choices``), on top of a relayed code
and a coached "Yes"; and a mule who hears the word from the genuine agent can relay it (A2, A3).
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from callproof.fraud import FraudDesk
from callproof.protocol.codes import damm_digit
from callproof.protocol.words import WORDS

from .conftest import Customer, Dialer, Instance, said

MULE_PHONE = "+886987654321"


def at_the_word(instance: Instance, lang: str = "en") -> tuple[Dialer, dict[str, Any], Customer]:
    """A relayed mule code, a coached "Yes": the victim's page shows the check words."""
    dialer = instance.dialer()
    call = dialer.issue(phone=MULE_PHONE)
    victim = instance.customer(lang=lang)
    assert victim.type_code(call["code_display"]).kind == "number"
    assert victim.answer_number(yes=True).kind == "word"
    return dialer, call, victim


def _buttons(html: str) -> list[str]:
    return re.findall(r'<button type="submit" name="word"[^>]*>.*?</button>', html, re.S)


@pytest.mark.parametrize("lang", ["en", "zh-Hant", "zh-Hans"])
def test_the_shared_screen_shows_the_choices_but_nothing_marks_the_right_one(
        instance: Instance, lang: str) -> None:
    dialer, call, victim = at_the_word(instance, lang)
    ticket_id = call["ticket_id"]
    assert victim.last is not None
    right = dialer.status(ticket_id)["check_word"]
    pages = [victim.last.text,  # what the shared screen shows, and the same step shown again
             victim.open(f"/verify/step?t={ticket_id}&lang={lang}").text]
    for page in pages:
        buttons = _buttons(page)
        assert len(buttons) == instance.services().deployment.config.limits.word_choices == 6
        # Every button is the same but for its word: no class, attribute or order marks one.
        shapes = {re.sub(r'value="[^"]*"|<span[^>]*>[^<]*</span>\s*[^<]*', "", b)
                  for b in buttons}
        assert len(shapes) == 1, shapes
        # Outside the buttons, the page never names the right word (not even in an attribute).
        rest = page
        for button in buttons:
            rest = rest.replace(button, "")
        # (Random tokens — the CSRF token, the ticket id — are not the page speaking.)
        rest = re.sub(r'name="(csrf_token|t)" value="[^"]*"|t=[\w-]+', "", rest)
        assert not re.search(rf'\b{re.escape(str(right["id"]))}\b', rest)
    shown = WORDS[str(right["id"])].text(lang)
    assert shown in victim.last.choices  # the choice is there, unmarked, among the others
    assert said(instance, "Only our agent can see which word is right.", lang) in \
        victim.last.visible_text()


def test_a_wrong_pick_ends_the_check_and_alerts_the_agent_and_the_fraud_desk(
        instance: Instance) -> None:
    dialer, call, victim = at_the_word(instance)
    ticket_id = call["ticket_id"]
    assert victim.last is not None
    right = dialer.check_word(ticket_id)
    guess = next(w for w in victim.last.choices if w != right)  # the scammer guesses wrong
    wrong_page = victim.last
    page = victim.tap_word(guess)
    assert page.kind == "failed"
    assert "We cannot confirm this call." in page.visible_text()

    status = dialer.status(ticket_id)
    assert status["state"] == "failed" and "check_word" not in status
    assert [a["type"] for a in status["alerts"]] == ["wrong_word"]
    [alert] = [a for a in FraudDesk(instance.services().deployment).alerts()
               if a.ticket_id == ticket_id]
    assert (alert.kind, alert.agent_id, alert.reason) == ("word_wrong", "a-001", "payment_failed")

    # No second try: the right word from the same page, or the code typed again, confirms nothing.
    victim.last = wrong_page
    assert victim.tap_word(right).kind == "failed"
    assert victim.type_code(call["code_display"]).kind == "failed"
    assert "ticket.verified" not in instance.event_types(ticket_id=ticket_id)
    assert dialer.status(ticket_id)["state"] == "failed"


@pytest.mark.parametrize("lang", ["en", "zh-Hant", "zh-Hans"])
def test_the_pages_say_we_never_ask_you_to_share_your_screen(instance: Instance,
                                                             lang: str) -> None:
    dialer = instance.dialer()
    call = dialer.issue()
    customer = instance.customer(lang=lang)
    customer.type_code(call["code_display"])
    customer.answer_number(yes=True)
    said_by_agent = WORDS[dialer.status(call["ticket_id"])["check_word"]["id"]].text(lang)
    confirmed = customer.tap_word(said_by_agent)
    failed = instance.customer(lang=lang).type_code("12345678" + damm_digit("12345678"))
    assert (confirmed.kind, failed.kind) == ("confirmed", "failed")
    for page in (confirmed, failed):
        never = re.search(r'(?s)<h2>([^<]*)</h2>\s*<ul class="never">(.*?)</ul>', page.text)
        assert never, f"the {page.kind} page lists what we never ask for"
        assert never.group(1) == said(instance, "We never ask you for", lang)
        items = [html.unescape(i) for i in re.findall(r"<li>([^<]*)</li>", never.group(2))]
        assert said(instance, "sharing your screen", lang) in items
        assert said(instance, "installing an app or opening a link", lang) in items
