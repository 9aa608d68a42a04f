"""The agent console on a 390 px phone, in English and Chinese (experience issue 14 items
10–14), in real browsers: the dialer hands over the customer by the address's fragment, the
script line, the check word in the customer's language, the reveal of the app code and the
phrase during the connected call, and every call of the agent in "Your recent calls".
Each page is screenshotted and checked with axe-core at every impact level."""

from __future__ import annotations

from typing import Any

import pytest

from callproof.proofs import totp as otp

from .conftest import Served, axe_violations

PASSWORD = "a long demo password"
REF = "C-1001"
PHRASE = "blue heron at dawn"
PHONE = 390

SCRIPT = {
    "en": "Please open your browser and type shop.example/call yourself.",
    "zh-Hant": "請您自己打開瀏覽器，輸入 shop.example/call。",
    "zh-Hans": "请您自己打开浏览器，输入 shop.example/call。",
}
SHOW = {"en": "Show the app code and call phrase", "zh-Hant": "顯示 App 動態碼和來電暗語",
        "zh-Hans": "显示 App 动态码和来电暗语"}
#: The customer's page language when the agent's console is in ``lang``: another one, so the
#: console must show the word as the customer sees it, not in its own language.
CUSTOMER_LANG = {"en": "zh-Hant", "zh-Hant": "en", "zh-Hans": "zh-Hant"}
NATIVE = {"en": "English", "zh-Hant": "繁體中文", "zh-Hans": "简体中文"}


def _clean(page: Any, what: str) -> None:
    found = axe_violations(page, every_impact=True)
    assert not found, (what, found)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE, (what, width)  # nothing runs off a phone's screen


@pytest.mark.parametrize("lang", ["en", "zh-Hant", "zh-Hans"])
def test_the_console_on_a_phone(browser: Any, served: Served, lang: str) -> None:
    s = served.services()
    s.passwords.set("a-001", PASSWORD)
    enrolment = s.enrolled.enroll_totp(customer_ref=REF)
    s.enrolled.confirm_totp(otp.code_at(enrolment.secret, s.deployment.now()), customer_ref=REF)
    s.enrolled.set_phrase(PHRASE, customer_ref=REF)
    earlier = s.issuer.issue(agent_id="a-001", reason="card_expiring")  # by the API, say
    shot = served.shots

    # bypass_csp: axe-core is injected into the pages (the app's own scripts run as served).
    ctx = browser.new_context(bypass_csp=True, viewport={"width": PHONE, "height": 844})
    agent = ctx.new_page()
    customer_ctx = browser.new_context(viewport={"width": PHONE, "height": 844})
    customer = customer_ctx.new_page()
    try:
        agent.goto(f"{served.url}/console/sign-in?lang={lang}")
        agent.fill("#agent_id", "a-001")
        agent.fill("#password", PASSWORD)
        agent.keyboard.press("Enter")
        agent.wait_for_selector("#reason")
        # The dialer opens the console with the customer in the fragment (never sent).
        agent.goto(f"{served.url}/console/?lang={lang}#customer={REF}&phone=%2B886912345678")
        agent.wait_for_function("document.getElementById('customer').value !== ''")
        assert agent.input_value("#customer") == REF
        assert agent.input_value("#phone") == "+886912345678"
        assert "#" not in agent.url  # dropped from the address bar and the history
        assert SCRIPT[lang] in agent.inner_text(".console-script")
        # Item 10: the API's call is among "Your recent calls".
        assert agent.locator(f"a[href^='/console/tickets/{earlier.ticket_id}']").count() == 1
        agent.screenshot(path=str(shot / f"console-phone-{lang}-home.png"), full_page=True)
        _clean(agent, "home")

        agent.select_option("#reason", "payment_failed")
        agent.click("form[action$='/console/tickets'] button[type=submit]")
        code = agent.inner_text(".code-display").strip()
        assert SCRIPT[lang] in agent.inner_text(".console-script")
        assert agent.locator("#reveal-waiting").is_visible()
        assert not agent.locator("#reveal-form").is_visible()
        agent.screenshot(path=str(shot / f"console-phone-{lang}-call.png"), full_page=True)
        _clean(agent, "call")

        # Item 13: the company's app sees the call.
        assert s.enrolled.call_status(REF)["calling"] is True

        # Item 11: the customer checks in another language; the console shows their word.
        theirs = CUSTOMER_LANG[lang]
        customer.goto(f"{served.url}/?lang={theirs}")
        customer.fill("#code", code)
        customer.click("button[type=submit]")
        customer.click("button[value=yes]")
        customer.wait_for_selector("button.word")
        agent.locator("#check-word:not([hidden])").wait_for(timeout=10000)
        ticket_id = agent.url.split("/console/tickets/")[1].split("?")[0]
        word = s.issuer.status(ticket_id).check_word
        assert agent.inner_text("#word-text").strip() == word.text(theirs)
        assert NATIVE[theirs] in agent.inner_text("#word-language")
        assert agent.get_attribute("#word-text", "lang") == theirs  # read out right
        assert not agent.locator("#script-line").is_visible()  # they are on the page already
        assert customer.locator("button.word", has_text=word.text(theirs)).count() == 1

        # Item 12: the dialer reports the call connected; the button appears by itself.
        s.issuer.connected(ticket_id)
        agent.locator("#reveal-form:not([hidden])").wait_for(timeout=10000)
        agent.screenshot(path=str(shot / f"console-phone-{lang}-word.png"), full_page=True)
        _clean(agent, "word")
        agent.click(f"#reveal-form button:has-text('{SHOW[lang]}')")
        agent.wait_for_selector("#app-code")
        shown = agent.inner_text("#app-code").replace(" ", "")
        assert len(shown) == 6 and shown.isdigit()
        assert agent.inner_text("#phrase").strip() == PHRASE
        agent.screenshot(path=str(shot / f"console-phone-{lang}-reveal.png"), full_page=True)
        _clean(agent, "reveal")
    finally:
        customer_ctx.close()
        ctx.close()
