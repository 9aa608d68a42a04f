"""Scenario 2 — a spoofed caller ID.

The scam: the phone rings and the screen shows +886 2 1234 5678 — the shop's own official
number, the one on its cards and receipts (spoofing a caller ID costs the scammer nothing). "You
can see it's us." He knows the order, and he asks for a card number "for the refund".

The mechanism: the number on the screen is not a proof, and the pages say so — the check page
says in its rules that caller ID can be faked and that the number on the screen proves nothing.
Only a code from a ticket the company's dialer issued confirms; the scammer has none, so the
customer lands on the failure page (hang up, call the official number yourself) and can report
the call there, with the number her phone showed. The report records that number in E.164
(never the customer's), and the fraud desk sees it ranked by how many customers reported it,
with the scripts they ticked — here, a wave of calls showing the company's own number.

Residual risk: a customer who trusts the caller ID and never opens the check page is not
protected by anything callproof shows; and the failure page, where a spoofed call ends, does not
itself repeat that caller ID proves nothing (see the expected failure below).
"""

from __future__ import annotations

import pytest

from callproof.fraud import FraudDesk
from callproof.protocol.codes import damm_digit
from callproof.scam_reports import normalise_caller_number

from .conftest import Instance, said

#: What the victims' phones showed, each written the way a customer copies it off the screen.
SHOWN = ("02 1234 5678", "+886 2 1234 5678", "(02) 1234-5678")
#: Another wave: a mainland number.
OTHER = "+86 21 5555 0100"


def made_up_code() -> str:
    """A code with a right check digit, as a scammer who knows the format would invent."""
    return "73019284" + damm_digit("73019284")


@pytest.mark.parametrize("lang", ["en", "zh-Hant", "zh-Hans"])
def test_the_check_page_says_caller_id_proves_nothing(instance: Instance, lang: str) -> None:
    company = instance.services().deployment.config.company
    words = instance.customer(lang=lang).open().visible_text()
    assert said(instance, "Caller ID can be faked. The number on your screen proves nothing.",
                lang) in words
    assert said(instance, "Open this page yourself: type %(page)s, use your bookmark, scan the "
                          "QR code on our notice card, or open it in the %(company)s app. Never "
                          "use a link or an address the caller gives you.", lang,
                page=company.check_page, company=company.name) in words


def test_the_failure_page_says_a_call_showing_our_number_may_not_be_us(
        instance: Instance) -> None:
    """The victim of a spoofed call reads "call us on +886 2 1234 5678" — the very number on
    her screen. The page she is on should tell her that this number on an incoming call proves
    nothing, so that "see, it IS our number" does not win the argument."""
    page = instance.customer().type_code(made_up_code())
    assert page.kind == "failed"
    assert "caller id" in page.visible_text().lower()


def test_reports_record_the_spoofed_number_and_the_fraud_desk_sees_it(
        instance: Instance) -> None:
    company = instance.services().deployment.config.company
    official = normalise_caller_number(company.official_number, company.country)
    for shown in SHOWN:  # three customers, one wave of calls showing the company's own number
        customer = instance.customer()
        assert customer.type_code(made_up_code()).kind == "failed"
        thanks = customer.report(scripts=["refund", "card_or_bank"], number=shown,
                                 text="He knew my order and asked for my card for a refund")
        words = thanks.visible_text()
        assert thanks.status == 200 and "Thank you for telling us." in words
        assert "If you are still on that call, hang up now." in words
    other = instance.customer()
    other.type_code(made_up_code())
    other.report(scripts=["verification_code"], number=OTHER)

    summary = FraudDesk(instance.services().deployment).reports(days=1)
    assert summary.total == 4 and summary.without_number == 0
    top, second = summary.by_number
    assert (top.number, top.reports) == (official, 3)  # the company's own number, spoofed
    assert dict(top.scripts) == {"refund": 3, "card_or_bank": 3}
    assert (second.number, second.reports) == ("+862155550100", 1)
    by_script = {s.script: s.reports for s in summary.by_script}
    assert by_script["refund"] == 3 and by_script["verification_code"] == 1

    # The fraud team sees the same on the desk's reports page, the spoofed number first.
    page = instance.desk().page("/fraud/reports?days=1").visible_text()
    assert page.index(official) < page.index("+862155550100")
    assert "my card" not in page and "for a refund" not in page

    # The police export lists each report with the number, and no free text.
    csv = FraudDesk(instance.services().deployment).police_csv(days=1)
    assert csv.count(official) == 3 and "refund" in csv and "my card" not in csv
    # The log records that reports were filed, never the number or the text.
    filed = [e for e in instance.events() if e.type == "report.filed"]
    assert len(filed) == 4
    for event in filed:
        body = event.to_bytes()
        assert b"212345678" not in body and b"2155550100" not in body
        assert b"for a refund" not in body
