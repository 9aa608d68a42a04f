"""Scenario 3 — "read me the code".

The scam: "To refund you I've sent a verification code to your phone — read it to me", or "read
me the number on the page", or "tell me your card number so I can match the refund". Genuine
companies train customers to prove who they are by reading codes out; scammers live on that habit.

The mechanism: in callproof, codes flow one way only, company → customer. The customer types the
company's call code into the company's page and never says anything back: no page, no API and no
console has anywhere to put a code or personal data *from* the customer — the one exception is
the enrolment page, where the customer types one code from her own authenticator app to finish
setting it up, and that page says it is the only place she ever types it. The API refuses any
member it does not know, so there is no way to hand a code in; the agent's console has no box for
it and tells the agent never to ask for anything to be read back; a card number or a bank code
typed into the call-code box is refused, echoed nowhere, kept nowhere and logged nowhere. And the
customer's texts say it: the check page, the confirmed and failure pages and the enrolment pages
say, in three languages, that we never ask for codes of any kind.

Residual risk: a customer who reads a code to a caller anyway — her bank's code, say — is not
stopped by anything callproof can do; the texts and the failure page's list of scam scripts are
the defence, and the phone question and the check word pages do not yet repeat the rule (see the
expected failures below).
"""

from __future__ import annotations

import logging
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]

from callproof.fraud import FraudDesk

from .conftest import Customer, Instance, Page, said

LANGS = ["en", "zh-Hant", "zh-Hans"]
NEVER_TELL = "You never have to tell the caller anything: no codes, no card or bank details."
NEVER_CODES = "codes of any kind, including the ones your bank sends you"
SPEC = Path(__file__).resolve().parents[2] / "spec" / "openapi.yaml"


class _Fields(HTMLParser):
    """Every form field a person could fill in or send: (tag, type, name)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: set[tuple[str, str, str]] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("input", "textarea", "select", "button") and a.get("name"):
            kind = a.get("type") or ("text" if tag == "input" else tag)
            self.found.add((tag, str(kind), str(a["name"])))


def fields(*pages: str) -> set[tuple[str, str, str]]:
    parser = _Fields()
    for page in pages:
        parser.feed(page)
    return parser.found


def typed(found: set[tuple[str, str, str]]) -> set[str]:
    """The names of the fields a person types into (not hidden fields, not buttons)."""
    return {name for tag, kind, name in found if tag == "textarea" or
            (tag == "input" and kind not in ("hidden", "checkbox", "radio", "submit"))}


def through_the_check(instance: Instance, lang: str) -> dict[str, str]:
    """Every page of the customer's check, in ``lang``: index, number, word, confirmed, failed."""
    dialer = instance.dialer()
    call = dialer.issue()
    customer = instance.customer(lang=lang)
    pages = {"index": customer.open().text,
             "number": customer.type_code(call["code_display"]).text,
             "word": customer.answer_number(yes=True).text}
    word = dialer.status(call["ticket_id"])["check_word"]["id"]
    assert customer.last is not None
    shown = next(text for text, word_id in customer.last.choices.items() if word_id == word)
    pages["confirmed"] = customer.tap_word(shown).text
    pages["failed"] = instance.customer(lang=lang).type_code("000000000").text
    return pages


def visible(instance: Instance, html: str) -> str:
    return Page(200, html, instance.url).visible_text()


@pytest.mark.parametrize("lang", LANGS)
def test_the_check_pages_say_we_never_ask_for_codes(instance: Instance, lang: str) -> None:
    pages = through_the_check(instance, lang)
    assert said(instance, NEVER_TELL, lang) in visible(instance, pages["index"])
    for name in ("confirmed", "failed"):
        words = visible(instance, pages[name])
        assert said(instance, "We never ask you for", lang) in words
        assert said(instance, NEVER_CODES, lang) in words, name


@pytest.mark.parametrize("page", ["number", "word"])
def test_the_pages_seen_during_the_call_say_we_never_ask_for_codes(instance: Instance,
                                                                    page: str) -> None:
    pages = through_the_check(instance, "en")
    assert NEVER_TELL in visible(instance, pages[page])


@pytest.mark.parametrize("lang", LANGS)
def test_the_enrolment_page_is_the_one_place_a_code_is_typed_and_says_so(
        instance: Instance, lang: str) -> None:
    site = instance.dialer(scopes=("enrol",), name="account site")
    made = site.call("POST", "/enrollments", {"customer_ref": "C-1001"})
    assert made.status_code == 201, made.text
    customer = instance.customer(lang=lang)
    customer.open(made.json()["url"])  # the link's page: one button, which uses the link
    app_page = customer.post(made.json()["url"], {})
    words = app_page.visible_text()
    assert said(instance, "We will never ask you to read it to anyone.", lang) in words
    assert said(instance, "6 digits. This is the only place you ever type it: to finish this "
                          "set-up.", lang) in words
    phrase = customer.open("/enroll/phrase").visible_text()
    assert said(instance, "Our agent says it. You never do.", lang) in phrase
    done = customer.open("/enroll/done").visible_text()
    assert said(instance, "You never read a code or say your phrase to anyone.", lang) in done


def test_no_customer_page_asks_for_anything_but_the_call_code(instance: Instance) -> None:
    pages = through_the_check(instance, "en")
    # The one box on the check itself is the call code; the failure page adds the optional
    # report: the number that called (the scammer's) and a free text that warns against
    # personal data. Nothing asks for a name, an ID, a card, a bank code or a password.
    assert {n: typed(fields(h)) for n, h in pages.items()} == {
        "index": {"code"}, "number": set(), "word": set(), "confirmed": set(),
        "failed": {"number", "text"}}
    index, failed = visible(instance, pages["index"]), visible(instance, pages["failed"])
    assert "The 9 digits the caller reads to you" in index
    assert "Do not write your name, ID number, card or bank details." in failed


def test_the_console_has_no_box_for_what_the_customer_says(instance: Instance) -> None:
    console = instance.console()
    home = console.http.get(instance.url + "/console/").text
    ticket_id, code = console.start_call()
    call_page = console.http.get(f"{instance.url}/console/tickets/{ticket_id}").text
    assert "Never ask the customer to read anything back." in visible(instance, call_page)
    customer = instance.customer()
    customer.type_code(code)  # the customer types it; the console learns only the step
    customer.answer_number(yes=True)
    later = console.http.get(f"{instance.url}/console/tickets/{ticket_id}").text
    # What an agent can type: the reason, the number the dialer dialled and the company's own
    # customer reference (from the dialer or the CRM) — never a code, a card or anything the
    # customer would have to say.
    assert typed(fields(home, call_page, later)) == {"phone", "customer"}
    assert {name for tag, _k, name in fields(home) if tag == "select"} == {"reason"}
    status = console.status(ticket_id)
    assert status["state"] == "number_confirmed" and status["check_word"]  # said TO her


def test_the_api_has_no_way_to_hand_in_a_code(instance: Instance) -> None:
    """Even a key with every scope (a thief's, an insider's) cannot post a customer's code."""
    key = instance.dialer(scopes=("issue", "status", "enrol", "reveal"), name="everything")
    call = key.issue()
    victims_code = "482913"  # what a victim reads out from her bank's SMS
    before = len(instance.events())
    refused = [
        key.call("POST", "/tickets", {"agent_id": "a-001", "reason": "payment_failed",
                                      "code": victims_code}),
        key.call("POST", "/call-status", {"customer_ref": "C-1001", "code": victims_code}),
        key.call("POST", "/enrollments", {"customer_ref": "C-1001", "otp": victims_code}),
    ]
    assert [(r.status_code, r.json()["error"]) for r in refused] == \
        [(422, "unknown_field")] * 3
    for path in ("/verify", "/confirm", "/code"):
        r = key.call("POST", f"/tickets/{call['ticket_id']}{path}", {"code": victims_code})
        assert r.status_code == 404 and r.json()["error"] == "not_found"
    # The documented API (every route, checked by tests/web/test_openapi.py) takes only these
    # members, and no body takes members it does not list.
    spec: dict[str, Any] = yaml.safe_load(SPEC.read_text("utf-8"))
    schemas = spec["components"]["schemas"]
    members: set[str] = set()
    for path in spec["paths"].values():
        for operation in path.values():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if body:
                ref = body["content"]["application/json"]["schema"]["$ref"]
                schema = schemas[ref.rsplit("/", 1)[-1]]
                assert schema["additionalProperties"] is False
                members |= set(schema["properties"])
    # (The agent registry's members name agents, departments and their voice-line routes.)
    assert members == {"agent_id", "reason", "customer_ref", "phone", "ttl", "locale", "lang",
                       "name", "names", "department", "department_names", "transfer_target",
                       "queue"}
    assert len(instance.events()) == before  # refused: nothing was written anywhere


@pytest.mark.parametrize("what", ["482913", "4111 1111 1111 1111", "A123456789"],
                         ids=["bank-code", "card-number", "id-number"])
def test_a_code_or_card_typed_into_the_call_code_box_is_refused_and_kept_nowhere(
        instance: Instance, caplog: pytest.LogCaptureFixture, what: str) -> None:
    caplog.set_level(logging.DEBUG)  # every log line the server writes, not just warnings
    before = len(instance.events())
    customer: Customer = instance.customer()
    page = customer.type_code(what)
    assert page.kind == "index" and page.status == 400
    assert "Type the 9 digits of the call code. Use digits only." in page.visible_text()
    digits = what.replace(" ", "")
    assert what not in page.text and digits not in page.text  # not echoed back
    assert len(instance.events()) == before  # nothing logged or stored about it
    assert "POST /verify" in caplog.text  # the server's log was captured…
    assert digits not in caplog.text and what not in caplog.text  # …and the input is not in it
    desk = FraudDesk(instance.services().deployment)
    assert desk.failed_lookups_per_hour(hours=1)[-1].count == 0  # not even a lookup
