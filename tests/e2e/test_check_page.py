"""The check page in a real browser: every page in every language, accessible, and the whole check.

Screenshots of each page in each language, on a 390 px phone, are kept (CI:
artifacts/screenshots/); axe-core finds no violation of any impact on any of them.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Served, axe_violations

LANGS = ["en", "zh-Hant", "zh-Hans"]
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@pytest.fixture
def context(browser: Any) -> Any:
    # bypass_csp lets the test inject axe-core; the app's own pages never need it.
    ctx = browser.new_context(bypass_csp=True, viewport={"width": 390, "height": 844})
    yield ctx
    ctx.close()


def _check(page: Any, served: Served, name: str) -> None:
    page.screenshot(path=str(served.shots / f"{name}.png"), full_page=True)
    violations = axe_violations(page, every_impact=True)
    assert not violations, f"{name}: {violations}"


def _issue(served: Served, phone: str | None = "+886912345678") -> Any:
    return served.services().issuer.issue(agent_id="a-001", reason="payment_failed", phone=phone)


@pytest.mark.parametrize("lang", LANGS)
def test_every_page_in_every_language_is_accessible(context: Any, served: Served,
                                                     lang: str) -> None:
    page = context.new_page()
    call = _issue(served)
    page.goto(f"{served.url}/?lang={lang}")
    assert page.get_attribute("html", "lang") == lang
    _check(page, served, f"{lang}-1-code")
    page.fill("#code", call.code[:-1] + str((int(call.code[-1]) + 1) % 10))
    page.keyboard.press("Enter")
    page.wait_for_selector(".error-summary")
    _check(page, served, f"{lang}-2-typo")
    page.fill("#code", call.code_display.translate(FULLWIDTH))
    page.keyboard.press("Enter")
    page.wait_for_selector("button[value=yes]")
    _check(page, served, f"{lang}-3-phone")
    page.click("button[value=yes]")
    page.wait_for_selector("button.word")
    _check(page, served, f"{lang}-4-word")
    right = served.services().issuer.status(call.ticket_id).check_word.id
    page.click(f"button[value={right}]")
    page.wait_for_selector(".panel.confirmed")
    _check(page, served, f"{lang}-5-confirmed")
    page.goto(f"{served.url}/?lang={lang}")
    page.fill("#code", "000000000")
    page.keyboard.press("Enter")
    page.wait_for_selector(".panel.warning")
    _check(page, served, f"{lang}-6-cannot-confirm")
    page.fill("#number", "02 2345 6789")
    page.check("#asked-refund")
    page.click("form[action='/report'] button")
    page.wait_for_selector("h1")
    _check(page, served, f"{lang}-7-report-thanks")


def test_small_screens_and_large_text(context: Any, served: Served) -> None:
    """Usable at 360 px wide and at 200 % zoom (a 1280 px screen is then 640 CSS px wide)."""
    page = context.new_page()
    for width in (360, 320, 640):
        page.set_viewport_size({"width": width, "height": 800})
        for path in ("/?lang=zh-Hant", "/verify/failed?lang=en"):
            page.goto(served.url + path)
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{path} scrolls sideways at {width}px"
    page.goto(served.url + "/")
    size = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert size >= 18
    page.set_viewport_size({"width": 360, "height": 800})
    page.goto(served.url + "/?lang=zh-Hans")
    page.screenshot(path=str(served.shots / "zh-Hans-360px-code.png"), full_page=True)


def test_keyboard_only(context: Any, served: Served) -> None:
    call = _issue(served, phone=None)
    page = context.new_page()
    page.goto(served.url + "/")
    page.keyboard.press("Tab")  # the skip link first
    assert page.evaluate("document.activeElement.className") == "skip"
    page.focus("#code")
    page.keyboard.type(call.code)
    page.keyboard.press("Enter")
    page.wait_for_selector("button.word")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.tagName")
    assert focused in ("BUTTON", "A")


def test_works_without_javascript(browser: Any, served: Served) -> None:
    ctx = browser.new_context(java_script_enabled=False)
    try:
        page = ctx.new_page()
        call = _issue(served)
        page.goto(served.url + "/")
        page.fill("#code", call.code)
        page.click("button[type=submit]")
        page.wait_for_selector("button[value=no]")
        page.click("button[value=no]")
        assert "We cannot confirm this call." in page.inner_text("h1")
    finally:
        ctx.close()
