"""The check page's experience in Chromium on a phone (issue 14, items 1–9; issue 13, item 19):
Back and reload never resend a form, a typo keeps the digits and its problem takes the focus,
the report form keeps what was typed, "I'm not sure", the address to check in the first screen,
the word tiles fit, numbers to tap, branded error pages and our own outage page.

Screenshots at 390 px in the three languages are kept (CI: artifacts/screenshots/); axe-core finds
no violation of any impact on any page shown here.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from callproof import StoreError

from .conftest import Served, axe_violations

LANGS = ["en", "zh-Hant", "zh-Hans"]
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def context(browser: Any) -> Any:
    # bypass_csp lets the test inject axe-core; the app's own pages never need it.
    ctx = browser.new_context(bypass_csp=True, viewport=PHONE)
    yield ctx
    ctx.close()


def _check(page: Any, served: Served, name: str) -> None:
    page.screenshot(path=str(served.shots / f"{name}.png"), full_page=True)
    violations = axe_violations(page, every_impact=True)
    assert not violations, f"{name}: {violations}"


def _issue(served: Served) -> Any:
    return served.services().issuer.issue(agent_id="a-001", reason="payment_failed",
                                          phone="+886912345678")


def _typo(code: str) -> str:
    return code[:-1] + str((int(code[-1]) + 1) % 10)


def test_back_and_reload_never_resend_a_form(context: Any, served: Served) -> None:
    call = _issue(served)
    page = context.new_page()
    navigations: list[str] = []
    page.on("request", lambda r: navigations.append(r.method)
            if r.is_navigation_request() else None)
    page.goto(served.url + "/")
    page.fill("#code", call.code)
    page.click("form[action='/verify'] button")
    page.wait_for_selector("button[value=yes]")
    assert "/verify/step?t=" in page.url
    page.click("button[value=yes]")
    page.wait_for_selector("button.word")
    choices = page.inner_text(".choices.words")
    navigations.clear()
    page.reload()
    page.wait_for_selector("button.word")
    assert navigations == ["GET"] and page.inner_text(".choices.words") == choices
    navigations.clear()
    page.go_back()  # the phone question's address: it now shows where the check is
    page.wait_for_selector("button.word")
    assert navigations == ["GET"]
    right = served.services().issuer.status(call.ticket_id).check_word.id
    page.click(f"button[value={right}]")
    page.wait_for_selector(".panel.confirmed")
    navigations.clear()
    page.reload()
    page.wait_for_selector(".panel.confirmed")
    page.go_back()
    page.wait_for_selector(".panel.confirmed")
    assert set(navigations) == {"GET"}


@pytest.mark.parametrize("lang", LANGS)
def test_the_first_screen_a_typo_and_the_report_form_in_every_language(
        context: Any, served: Served, lang: str) -> None:
    call = _issue(served)
    page = context.new_page()
    page.goto(f"{served.url}/?lang={lang}")
    cue = page.locator(".address-check").bounding_box()
    assert cue and cue["y"] + cue["height"] <= PHONE["height"], "the address is in the first screen"
    assert page.inner_text(".address-check .address") == "shop.example"
    _check(page, served, f"{lang}-390-1-code")
    wide = str.maketrans("0123456789", "０１２３４５６７８９")
    page.fill("#code", _typo(call.code).translate(wide))
    page.keyboard.press("Enter")
    page.wait_for_selector(".error-summary")
    typo = _typo(call.code)
    assert page.input_value("#code") == f"{typo[:3]} {typo[3:6]} {typo[6:]}"
    assert page.evaluate("document.activeElement.className") == "error-summary"
    _check(page, served, f"{lang}-390-2-typo")
    page.click(".no-code a")  # the report, without a code
    page.wait_for_selector("form[action='/report']")
    page.fill("#number", "not a number")
    page.check("#asked-refund")
    page.fill("#text", "He asked me to share my screen.")
    page.click("form[action='/report'] button")
    page.wait_for_selector(".error-summary")
    assert page.evaluate("document.activeElement.className") == "error-summary"
    assert page.input_value("#number") == "not a number" and page.is_checked("#asked-refund")
    assert page.input_value("#text") == "He asked me to share my screen."
    _check(page, served, f"{lang}-390-3-report-problem")
    page.fill("#number", "02 2345 6789")
    page.click("form[action='/report'] button")
    page.wait_for_selector(".panel[role=status]")
    assert page.url.endswith(f"/report/thanks?lang={lang}")


@pytest.mark.parametrize("lang", LANGS)
def test_not_sure_and_the_failure_page_in_every_language(context: Any, served: Served,
                                                         lang: str) -> None:
    call = _issue(served)
    page = context.new_page()
    page.goto(f"{served.url}/?lang={lang}")
    page.fill("#code", call.code)
    page.keyboard.press("Enter")
    page.wait_for_selector("button[value=unsure]")
    page.click("button[value=unsure]")
    page.wait_for_selector("ul.steps")
    assert page.locator("a[href='tel:+886212345678']").count() >= 1
    _check(page, served, f"{lang}-390-4-not-sure")
    page.click("button[value=no]")
    page.wait_for_selector(".panel.warning")
    assert page.get_attribute(".panel.warning a[href^='tel:+886']", "href") == "tel:+886212345678"
    assert page.get_attribute(".panel.warning a[href='tel:165']", "href") == "tel:165"
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    _check(page, served, f"{lang}-390-5-cannot-confirm")


@pytest.mark.parametrize("lang", LANGS)
def test_error_pages_and_our_outage_in_every_language(context: Any, served: Served,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      lang: str) -> None:
    page = context.new_page()
    response = page.goto(f"{served.url}/no/such/page?lang={lang}")
    assert response is not None and response.status == 404
    _check(page, served, f"{lang}-390-6-not-found")
    response = page.goto(f"{served.url}/call?lang={lang}")
    assert response is not None and response.status == 200 and page.locator("#code").count() == 1
    call = _issue(served)

    def down(*_a: Any, **_k: Any) -> Any:
        raise StoreError("the database is unavailable")

    monkeypatch.setattr(served.services().flow, "lookup", down)
    page.fill("#code", call.code)
    with page.expect_response(lambda r: r.url.endswith("/verify")) as answer:
        page.keyboard.press("Enter")
    assert answer.value.status == 503
    page.wait_for_selector(".panel.outage")
    assert page.locator(".panel.warning").count() == 0  # never the scam warning
    _check(page, served, f"{lang}-390-7-outage")
    page.set_viewport_size({"width": 320, "height": 700})
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, "the outage page scrolls sideways at 320px"


def _words() -> list[dict[str, str]]:
    raw = resources.files("callproof").joinpath("data/check_words.json").read_text("utf-8")
    words: list[dict[str, str]] = json.loads(raw)
    return words


@pytest.mark.parametrize("width", [320, 390])
def test_every_check_word_fits_its_tile(context: Any, served: Served, width: int) -> None:
    """Each of the 72 words, in each language, put in turn into the six tiles of a real word
    page: no tile's text is wider than the tile (scrollWidth <= clientWidth) and the page does
    not scroll sideways."""
    call = _issue(served)
    page = context.new_page()
    page.set_viewport_size({"width": width, "height": 844})
    page.goto(served.url + "/")
    page.fill("#code", call.code)
    page.keyboard.press("Enter")
    page.click("button[value=yes]")
    page.wait_for_selector("button.word")
    words = _words()
    longest = sorted(words, key=lambda w: -len(w["en"]))[:6]
    for lang in LANGS:
        page.goto(f"{page.url.split('&lang=')[0]}&lang={lang}")
        page.wait_for_selector("button.word")
        for start in range(0, len(words), 6):
            batch = [w[lang] for w in words[start:start + 6]]
            overflowing = page.evaluate(
                """(batch) => {
                     const tiles = [...document.querySelectorAll('button.word')];
                     tiles.forEach((t, i) => {
                       t.lastChild.textContent = ' ' + batch[i % batch.length]; });
                     return tiles.filter(t => t.scrollWidth > t.clientWidth)
                                 .map(t => t.textContent);
                   }""", batch)
            assert not overflowing, f"{lang} at {width}px: {overflowing}"
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the word page scrolls sideways at {width}px in {lang}"
        page.evaluate("""(batch) => document.querySelectorAll('button.word').forEach((t, i) => {
                           t.firstChild.textContent = batch[i][0];
                           t.lastChild.textContent = ' ' + batch[i][1]; })""",
                      [(w["emoji"], w[lang]) for w in longest])
        page.screenshot(path=str(served.shots / f"{lang}-{width}px-longest-words.png"),
                        full_page=True)
