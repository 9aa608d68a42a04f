"""Issue 14 items 16–18 in a real browser on a 390 px phone: the live desk opens an alert to the
story of its call (in the company's time zone, in words, in the desk user's language), the
alert is acknowledged and assigned with the page's own buttons, and a scam report's page shows
what the customer wrote, escaped. axe-core finds no violation of any impact; screenshots of
each page in en, zh-Hant and zh-Hans are kept (CI: artifacts/screenshots/).
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import DESK_PASSWORD, DESK_USER, DeskSignIn, Served, axe_violations, says_no

LANGS = ["en", "zh-Hant", "zh-Hans"]
WRITTEN = '<b>He said</b> he was from the bank & asked me to install an app'
STORY = {
    "en": ["Agent a-001 started the call.", "The customer typed the call code on the check page.",
           "The customer said “No”: the phone is not theirs."],
    "zh-Hant": ["客服人員 a-001 撥出這通電話。", "顧客在來電查證頁輸入了來電確認碼。",
                "顧客回答「不是」：手上的電話不是他的。"],
    "zh-Hans": ["客服人员 a-001 拨出这通电话。", "顾客在来电查证页输入了来电确认码。",
                "顾客回答“不是”：手上的电话不是他的。"],
}


@pytest.fixture
def colleague(served: Served) -> str:
    """A second desk user, to assign alerts to."""
    served.services().desk_users.add("d-003", "Wang Investigator", DESK_PASSWORD)
    return "d-003"


def _check(page: Any, served: Served, name: str) -> None:
    page.screenshot(path=str(served.shots / f"{name}.png"), full_page=True)
    violations = axe_violations(page, every_impact=True)
    assert not violations, f"{name}: {violations}"
    # Nothing wider than the phone: the page does not scroll sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, name


@pytest.mark.parametrize("lang", LANGS)
def test_an_alerts_story_acknowledge_assign_and_a_reports_words_on_a_phone(
        served: Served, desk_sign_in: DeskSignIn, colleague: str, lang: str) -> None:
    ticket_id = says_no(served)
    served.services().reports.file(scripts=["card_or_bank", "install_app"],
                                   caller_number="+886223456789", text=WRITTEN)
    page = desk_sign_in(lang, bypass_csp=True, width=390, height=844)
    assert "CST" in page.inner_text("#alert-rows")  # Taipei time, the country's zone
    _check(page, served, f"desk14-{lang}-1-alerts")
    page.click("#alert-rows tr.kind-number_denied a")
    page.wait_for_selector("#story-steps")
    assert ticket_id in page.inner_text("main")
    steps = page.locator("#story-steps li").all_inner_texts()
    for expected, step in zip(STORY[lang], steps, strict=False):
        assert expected in step
    assert "CST" in steps[0]
    _check(page, served, f"desk14-{lang}-2-story")
    page.click("#acknowledge")
    page.wait_for_selector("#acknowledged")
    assert DESK_USER in page.inner_text("#acknowledged")
    page.select_option("#assignee", colleague)
    page.click("#assign")
    page.wait_for_selector("#assigned")
    assert colleague in page.inner_text("#assigned")
    _check(page, served, f"desk14-{lang}-3-assigned")
    page.goto(f"{served.url}/fraud/reports?days=1&lang={lang}")
    page.click("#report-table a")
    page.wait_for_selector("#report-text")
    assert page.inner_text("#report-text") == WRITTEN  # shown as typed, not as markup
    assert page.locator("#report-text b").count() == 0
    _check(page, served, f"desk14-{lang}-4-report")
