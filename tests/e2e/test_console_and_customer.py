"""The whole story in two (then three) real browsers, as issue #3 tells it.

The agent issues a call in the console → the customer types the code in full-width digits with
spaces → answers the phone question → taps the word the console shows → both sides see it
confirmed. A second browser with the same code → the failure page, and an alert in the console.
A made-up code → the failure page. The console's pages are screenshotted and checked with axe.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Served, axe_violations

FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
PASSWORD = "a long demo password"


@pytest.fixture
def agent(browser: Any, served: Served) -> Any:
    served.services().passwords.set("a-001", PASSWORD)
    ctx = browser.new_context(bypass_csp=False, viewport={"width": 1000, "height": 900})
    page = ctx.new_page()
    page.goto(f"{served.url}/console/sign-in")
    page.fill("#agent_id", "a-001")
    page.fill("#password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("#reason")
    yield page
    ctx.close()


def _customer(browser: Any) -> Any:
    return browser.new_context(viewport={"width": 420, "height": 900}).new_page()


def test_agent_and_customer_confirm_the_call_and_a_relay_is_caught(
        browser: Any, served: Served, agent: Any) -> None:
    agent.select_option("#reason", "payment_failed")
    agent.fill("#phone", "+886912345678")
    agent.click("form[action$='/console/tickets'] button[type=submit]")
    code = agent.inner_text(".code-display").strip()
    assert len(code.replace(" ", "")) == 9

    customer = _customer(browser)
    customer.goto(served.url + "/")
    customer.fill("#code", " " + code.translate(FULLWIDTH) + " ")
    customer.click("button[type=submit]")
    customer.wait_for_selector("button[value=yes]")
    assert "5678" in customer.inner_text("h1")
    customer.click("button[value=yes]")
    customer.wait_for_selector("button.word")

    # The console learns by itself (the 2 s poll) that the word is due, and shows it.
    agent.locator("#check-word:not([hidden])").wait_for(timeout=10000)
    word = agent.inner_text("#word-text").strip()
    customer.locator("button.word", has_text=word).click()
    customer.wait_for_selector(".panel.confirmed")
    assert "This is Example Shop." in customer.inner_text("h1")
    agent.locator("#call-status[data-state=verified]").wait_for(timeout=10000)

    # A second browser with the same code: the failure page, and an alert on the agent's screen.
    relay = _customer(browser)
    relay.goto(served.url + "/")
    relay.fill("#code", code)
    relay.click("button[type=submit]")
    relay.wait_for_selector(".panel.warning")
    assert "We cannot confirm this call." in relay.inner_text("h1")
    agent.locator("#alerts:not([hidden])").wait_for(timeout=10000)
    assert agent.locator("#alert-list li").count() >= 1
    agent.screenshot(path=str(served.shots / "console-en-alert.png"), full_page=True)

    # A made-up code: the failure page.
    stranger = _customer(browser)
    stranger.goto(served.url + "/")
    stranger.fill("#code", "000 000 000")
    stranger.click("button[type=submit]")
    stranger.wait_for_selector(".panel.warning")
    for page in (customer, relay, stranger):
        page.context.close()


@pytest.mark.parametrize("lang", ["en", "zh-Hant", "zh-Hans"])
def test_console_pages_are_accessible(browser: Any, served: Served, lang: str) -> None:
    served.services().passwords.set("a-001", PASSWORD)
    ctx = browser.new_context(bypass_csp=True, viewport={"width": 1000, "height": 900})
    page = ctx.new_page()
    try:
        page.goto(f"{served.url}/console/sign-in?lang={lang}")
        checks = [("sign-in", None)]
        page.screenshot(path=str(served.shots / f"console-{lang}-sign-in.png"), full_page=True)
        assert not axe_violations(page, every_impact=True), checks
        page.fill("#agent_id", "a-001")
        page.fill("#password", PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_selector("#reason")
        page.screenshot(path=str(served.shots / f"console-{lang}-home.png"), full_page=True)
        assert not axe_violations(page, every_impact=True)
        page.select_option("#reason", "order_delivery")
        page.click("form[action$='/console/tickets'] button[type=submit]")
        page.wait_for_selector(".code-display")
        page.screenshot(path=str(served.shots / f"console-{lang}-call.png"), full_page=True)
        assert not axe_violations(page, every_impact=True)
    finally:
        ctx.close()
