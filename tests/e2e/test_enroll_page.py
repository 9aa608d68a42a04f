"""The enrolment page in a real browser, in the three languages: the link's page and its button,
the QR code and its key, a wrong code, the right one, a refused phrase, a saved one, and a used
link. Screenshots of each step on a 390 px phone are kept (CI: artifacts/screenshots/); axe-core
finds no violation of any impact on any of them.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from ..proofs.otp_by_hand import key_of
from ..proofs.otp_by_hand import totp as totp_by_hand
from .conftest import Served, axe_violations

LANGS = ["en", "zh-Hant", "zh-Hans"]


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


def _codes_now(secret: str) -> list[str]:
    at = int(time.time())
    return [totp_by_hand(key_of(secret), at + d) for d in (-30, 0, 30)]


@pytest.mark.parametrize("lang", LANGS)
def test_the_enrolment_page_in_every_language_is_accessible(context: Any, browser: Any,
                                                            served: Served, lang: str) -> None:
    token = served.services().enrolled.create_enrollment("C-4004").token
    page = context.new_page()
    page.goto(f"{served.url}/enroll/{token}?lang={lang}")
    _check(page, served, f"enroll-{lang}-0-start")  # opening the link uses nothing
    page.click("main form button[type=submit]")
    page.wait_for_selector(".enroll-qr svg")
    assert page.get_attribute("html", "lang") == lang
    assert "/enroll/app" in page.url and token not in page.url  # the token leaves the URL
    _check(page, served, f"enroll-{lang}-1-qr")
    page.click(".enroll-manual summary")
    secret = page.inner_text(".enroll-secret").replace(" ", "")
    _check(page, served, f"enroll-{lang}-2-key")
    codes = _codes_now(secret)
    wrong = next(c for c in (f"{(int(codes[1]) + n) % 1_000_000:06d}" for n in range(1, 9))
                 if c not in codes)
    page.fill("#code", wrong)
    page.keyboard.press("Enter")
    page.wait_for_selector(".error-summary")
    _check(page, served, f"enroll-{lang}-3-wrong-code")
    page.fill("#code", _codes_now(secret)[1])
    page.keyboard.press("Enter")
    page.wait_for_selector("#phrase")
    _check(page, served, f"enroll-{lang}-4-phrase")
    page.fill("#phrase", "4111 1111 1111 1111")
    page.keyboard.press("Enter")
    page.wait_for_selector(".error-summary")
    assert page.input_value("#phrase") == ""  # never echoed
    _check(page, served, f"enroll-{lang}-5-bad-phrase")
    page.fill("#phrase", "blue heron at dawn")
    page.keyboard.press("Enter")
    page.wait_for_selector(".panel.confirmed")
    _check(page, served, f"enroll-{lang}-6-done")
    assert served.services().enrolled.enrolled(customer_ref="C-4004") == \
        {"totp": "confirmed", "phrase": True}
    other = browser.new_context(bypass_csp=True, viewport={"width": 390, "height": 844})
    try:
        again = other.new_page()
        again.goto(f"{served.url}/enroll/{token}?lang={lang}")
        again.click("main form button[type=submit]")
        again.wait_for_selector(".panel.notice")
        _check(again, served, f"enroll-{lang}-7-used-link")
    finally:
        other.close()


def test_the_enrolment_page_fits_a_small_screen(context: Any, served: Served) -> None:
    token = served.services().enrolled.create_enrollment("C-4005").token
    page = context.new_page()
    page.set_viewport_size({"width": 320, "height": 800})
    page.goto(f"{served.url}/enroll/{token}?lang=zh-Hant")
    page.click("main form button[type=submit]")
    page.click(".enroll-manual summary")
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, "the enrolment page scrolls sideways at 320px"
    page.screenshot(path=str(served.shots / "enroll-zh-Hant-320px.png"), full_page=True)
