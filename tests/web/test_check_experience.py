"""The check page as the people who use it meet it (issue 14, items 1–9; issue 13, item 19):
Post/Redirect/Get for every step, what was typed is kept, names in the page's language, numbers
to tap, "I'm not sure", the trust cue and branded error pages, "no code = not us", and our own
outage said honestly. Through the Flask test client; tests/e2e plays the same in Chromium.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from callproof import CheckStep, IssuedTicket, StoreError
from callproof.protocol.codes import damm_digit
from verifier_app import services

from .conftest import Web
from .test_public import h1, issue, right_word, visible_text

LANGS = ["en", "zh-Hant", "zh-Hans"]


def csrf(client: FlaskClient, path: str = "/") -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))
    assert match, f"{path} has a form"
    return match.group(1)


def submit(client: FlaskClient, path: str, lang: str = "en", **data: Any) -> TestResponse:
    """A form as the browser sends it, not followed: the answer itself."""
    return client.post(path, data={"csrf_token": csrf(client), "lang": lang, **data})


def follow(client: FlaskClient, response: TestResponse) -> TestResponse:
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return client.get(response.headers["Location"])


def typo_of(code: str) -> str:
    return code[:-1] + str((int(code[-1]) + 1) % 10)


def grouped(digits: str) -> str:
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}"


# --- 1. Post/Redirect/Get ------------------------------------------------------------------

def test_every_step_answers_303_to_a_get_page_that_shows_it_again(web: Web) -> None:
    call = issue(web)
    client = web.client
    sent = submit(client, "/verify", code=call.code)
    assert sent.status_code == 303
    assert sent.headers["Location"] == f"/verify/step?t={call.ticket_id}&lang=en"
    assert "cp_claim=" in sent.headers["Set-Cookie"]  # the claim cookie keeps the state
    for _ in range(2):  # shown, then a reload (or Back): the same step, no form sent again
        page = client.get(sent.headers["Location"])
        assert page.status_code == 200 and h1(page.get_data(as_text=True)).startswith("Does")
    sent = submit(client, "/verify/number", answer="yes", t=call.ticket_id)
    assert sent.status_code == 303 and sent.headers["Location"].startswith("/verify/step?t=")
    first, again = (client.get(sent.headers["Location"]).get_data(as_text=True) for _ in "12")
    assert h1(first).startswith("Ask the caller") and first == again  # the same six choices
    sent = submit(client, "/verify/word", word=right_word(web, call), t=call.ticket_id)
    assert sent.status_code == 303
    page = client.get(sent.headers["Location"]).get_data(as_text=True)
    assert h1(page) == "This is Example Shop."
    # The step page belongs to the browser that claimed the code: any other gets the one
    # failure page, and nothing moves.
    stranger = web.app.test_client().get(sent.headers["Location"]).get_data(as_text=True)
    assert h1(stranger) == "We cannot confirm this call."
    with web.app.app_context():
        assert services().issuer.status(call.ticket_id).state == "verified"


def test_a_failure_answers_303_to_the_one_failure_page(web: Web) -> None:
    call = issue(web)
    client = web.client
    follow(client, submit(client, "/verify", code=call.code))
    sent = submit(client, "/verify/number", answer="no", t=call.ticket_id)
    assert sent.headers["Location"] == "/verify/failed?lang=en"
    page = follow(client, sent)
    assert page.status_code == 200 and h1(page.get_data(as_text=True)) == \
        "We cannot confirm this call."
    # Back to the step's address: still the failure page (the ticket failed).
    back = client.get(f"/verify/step?t={call.ticket_id}").get_data(as_text=True)
    assert h1(back) == "We cannot confirm this call."
    missing = submit(web.app.test_client(), "/verify", code="000000000")
    assert missing.headers["Location"] == "/verify/failed?lang=en"


def test_the_second_device_reads_its_line_on_the_failure_page_after_the_redirect(
        web: Web) -> None:
    call = issue(web)
    follow(web.client, submit(web.client, "/verify", code=call.code))
    other = web.app.test_client()
    sent = submit(other, "/verify", "zh-Hant", code=call.code)
    assert sent.headers["Location"] == "/verify/failed?lang=zh-Hant"
    cookie = next(c for c in sent.headers.getlist("Set-Cookie") if c.startswith("cp_page="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/verify" in cookie
    page = follow(other, sent).get_data(as_text=True)
    assert "這組來電確認碼已經在另一台裝置上查證過。" in page
    # A language switch keeps it; the first browser never reads it.
    assert "already checked on another device" in \
        other.get("/verify/failed?lang=en").get_data(as_text=True)
    assert "another device" not in web.client.get("/verify/failed").get_data(as_text=True)


# --- 2. What was typed is kept; the error summary at the top takes focus -------------------

def test_a_typo_keeps_the_digits_grouped_and_puts_the_problem_first(web: Web) -> None:
    call = issue(web)
    typo = typo_of(call.code)
    sent = submit(web.client, "/verify", code=typo)
    assert sent.headers["Location"] == "/verify?lang=en"
    page = follow(web.client, sent)
    html = page.get_data(as_text=True)
    assert page.status_code == 400
    assert f'value="{grouped(typo)}"' in html and typo not in html
    summary = re.search(r'<div class="error-summary"[^>]*>', html)
    assert summary and 'role="alert"' in summary.group(0) and 'tabindex="-1"' in \
        summary.group(0) and "autofocus" in summary.group(0)
    assert html.index("error-summary") < html.index("<h1>")  # at the top, without JavaScript
    assert 'href="#code"' in html and 'id="code-error"' in html and 'aria-invalid="true"' in html
    # A reload or a language switch shows it again; the right code clears it.
    assert grouped(typo) in web.client.get("/verify?lang=zh-Hans").get_data(as_text=True)
    done = submit(web.client, "/verify", code=call.code)
    assert any(c.startswith("cp_page=;") for c in done.headers.getlist("Set-Cookie"))
    assert grouped(typo) not in web.client.get("/verify").get_data(as_text=True)


@pytest.mark.parametrize("typed,shown", [
    ("482 917 36", "482 917 36"),      # one digit missing: kept
    ("48291736x", "482 917 36"),       # a letter: the digits are kept
    ("4829 1736 51 2", ""),            # ten digits might hold a real code: nothing kept
    ("", ""),
])
def test_a_code_with_too_few_digits_keeps_them_but_never_what_may_be_a_code(
        web: Web, typed: str, shown: str) -> None:
    page = follow(web.client, submit(web.client, "/verify", code=typed))
    html = page.get_data(as_text=True)
    assert page.status_code == 400 and "Use digits only." in html
    assert f'value="{shown}"' in html


def test_a_valid_code_is_never_shown_back_even_from_a_forged_cookie(web: Web,
                                                                    caplog: Any) -> None:
    call = issue(web)
    # Nine digits with a right check digit and a letter: refused as a format error, not kept.
    with caplog.at_level(logging.DEBUG):
        follow(web.client, submit(web.client, "/verify", code=call.code + "x"))
    assert call.code not in caplog.text and grouped(call.code) not in caplog.text
    page = web.client.get("/verify").get_data(as_text=True)
    assert grouped(call.code) not in page and call.code not in page
    web.client.set_cookie("cp_page", f"typo-{call.code}", path="/verify")
    page = web.client.get("/verify").get_data(as_text=True)
    assert grouped(call.code) not in page and call.code not in page
    made_up = "12345678" + damm_digit("12345678")
    web.client.set_cookie("cp_page", f"typo-{made_up}", path="/verify")
    assert grouped(made_up) not in web.client.get("/verify").get_data(as_text=True)


def test_the_report_form_keeps_what_was_typed_and_names_each_problem(web: Web) -> None:
    long_text = "He said my order was charged twice. " * 20
    page = submit(web.client, "/report", number="not a number", asked=["refund", "install_app"],
                  text=long_text)
    html = page.get_data(as_text=True)
    assert page.status_code == 400
    assert 'value="not a number"' in html
    assert re.search(r'id="asked-refund" name="asked" value="refund" checked', html)
    assert re.search(r'id="asked-install_app" name="asked" value="install_app" checked', html)
    assert not re.search(r'value="screen_sharing" checked', html)
    assert long_text.strip() in html
    # Both problems at the top (linked to their fields) and beside each field.
    assert html.index("error-summary") < html.index("<h1>")
    assert 'href="#number"' in html and 'href="#text"' in html
    assert 'id="number-error"' in html and 'id="text-error"' in html
    assert html.count("That phone number does not look right.") == 2
    with web.app.app_context(), services().deployment.store.read() as conn:
        from sqlalchemy import func, select

        from callproof.store import schema
        assert conn.execute(select(func.count()).select_from(schema.scam_reports)).scalar() == 0
    sent = submit(web.client, "/report", number="02 2345 6789", asked="refund", text="Short.")
    assert sent.headers["Location"] == "/report/thanks?lang=en"
    assert "Thank you for telling us." in follow(web.client, sent).get_data(as_text=True)


# --- 3. Names in the page's language -------------------------------------------------------

def test_the_company_name_in_the_pages_language(web: Web, make_app: Callable[..., Flask]
                                                ) -> None:
    config = web.path / "config.toml"
    config.write_text(config.read_text().replace(
        'hotline = "165"', 'hotline = "165"\nname_zh_hant = "範例商店"\nname_zh_hans = "范例商店"'))
    client = make_app().test_client()
    assert h1(client.get("/?lang=zh-Hant").get_data(as_text=True)) == \
        "現在打給您的，真的是 範例商店 嗎？"
    assert h1(client.get("/?lang=zh-Hans").get_data(as_text=True)) == \
        "现在打给您的，真的是 范例商店 吗？"
    assert h1(client.get("/?lang=en").get_data(as_text=True)) == \
        "Is Example Shop calling you right now?"


def test_the_agents_and_departments_names_in_the_pages_language(web: Web) -> None:
    # The agent registry holds the names per language (`callproof agents set`).
    with web.app.app_context():
        services().admin.set_agent("a-001", names={"zh-Hant": "林美", "zh-Hans": "林美"},
                                   department_names={"zh-Hant": "客服部", "zh-Hans": ""})
    call = issue(web)
    follow(web.client, submit(web.client, "/verify", code=call.code))
    follow(web.client, submit(web.client, "/verify/number", answer="yes", t=call.ticket_id))
    page = f"/verify/step?t={call.ticket_id}"
    assert "來電者是客服部的林美。" in \
        web.client.get(page + "&lang=zh-Hant").get_data(as_text=True)
    # No department name in Simplified Chinese: the given one.
    assert "来电者是Customer Care的林美。" in \
        web.client.get(page + "&lang=zh-Hans").get_data(as_text=True)
    assert "The caller is Mei Lin, Customer Care." in \
        web.client.get(page + "&lang=en").get_data(as_text=True)


# --- 4. Numbers to tap ---------------------------------------------------------------------

def test_the_failure_page_has_tel_links_for_the_official_number_and_the_hotline(
        web: Web) -> None:
    html = follow(web.client, submit(web.client, "/verify", code="000000000")).get_data(
        as_text=True)
    assert '<a class="tel number" href="tel:+886212345678">+886 2 1234 5678</a>' in html
    assert '<a class="tel" href="tel:165">the 165 anti-fraud hotline</a>' in html


# --- 5. "I'm not sure" ---------------------------------------------------------------------

@pytest.mark.parametrize("lang", LANGS)
def test_not_sure_explains_how_to_see_the_number_and_never_says_hang_up_now(
        web: Web, lang: str) -> None:
    call = issue(web)
    follow(web.client, submit(web.client, "/verify", lang, code=call.code))
    sent = submit(web.client, "/verify/number", lang, answer="unsure", t=call.ticket_id)
    assert sent.headers["Location"] == f"/verify/unsure?t={call.ticket_id}&lang={lang}"
    page = follow(web.client, sent)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'name="answer" value="yes"' in html  # asked again
    assert 'href="tel:+886212345678"' in html
    with web.app.test_request_context(f"/?lang={lang}"):
        from flask_babel import gettext

        assert gettext("Hang up now.") not in html
        assert gettext("We cannot confirm this call.") not in html
        assert gettext("How to see your own number") in html
    with web.app.app_context():
        assert services().issuer.status(call.ticket_id).state == "claimed"  # nothing moved
    # From there "Yes" goes on to the check word; the help page then leads to the step.
    follow(web.client, submit(web.client, "/verify/number", lang, answer="yes",
                              t=call.ticket_id))
    later = web.client.get(f"/verify/unsure?t={call.ticket_id}")
    assert later.status_code == 303 and later.headers["Location"].startswith("/verify/step")


# --- 6. The trust cue, /call, branded error pages ------------------------------------------

def test_the_first_screen_says_which_address_to_check(web: Web) -> None:
    html = web.client.get("/").get_data(as_text=True)
    cue = html.index("it must show")
    assert cue < html.index('<form method="post"')  # before the code box: in the first screen
    assert '<strong class="address" translate="no">shop.example</strong>' in html
    call = web.client.get("/call")  # what the notice card prints
    assert call.status_code == 200 and h1(call.get_data(as_text=True)) == \
        "Is Example Shop calling you right now?"


@pytest.mark.parametrize("lang,title", [("en", "Page not found"), ("zh-Hant", "找不到這個頁面"),
                                        ("zh-Hans", "找不到这个页面")])
def test_a_page_that_does_not_exist_is_branded_and_translated(web: Web, lang: str,
                                                             title: str) -> None:
    response = web.client.get(f"/nothing/here?lang={lang}")
    html = response.get_data(as_text=True)
    assert response.status_code == 404 and h1(html) == title
    assert f'<html lang="{lang}">' in html and 'href="/?lang=' in html
    assert "Example Shop" in html and "+886 2 1234 5678" in html


def test_links_on_an_error_page_stay_on_this_site(web: Web) -> None:
    """``shop.example//evil.example/x``: the 404 page's language links keep to this site."""
    response = web.client.get("/", environ_overrides={"PATH_INFO": "//evil.example/x"})
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert 'href="/evil.example/x?lang=zh-Hant"' in html
    assert not re.search(r'href="(//|https?:)', html)


def test_a_form_address_opened_directly_is_a_branded_405(web: Web) -> None:
    response = web.client.get("/verify/number?lang=zh-Hans")
    assert response.status_code == 405 and "POST" in response.headers["Allow"]
    assert h1(response.get_data(as_text=True)) == "这个页面不能直接打开"


def test_the_api_keeps_its_json_errors(web: Web) -> None:
    response = web.client.get("/api/v2/nothing")
    assert response.status_code == 404 and response.is_json


def test_a_server_error_is_a_branded_page_without_a_trace(web: Web,
                                                          make_app: Callable[..., Flask]) -> None:
    app = make_app(PROPAGATE_EXCEPTIONS=False)

    @app.get("/_boom")
    def boom() -> str:
        raise RuntimeError("secret detail")

    response = app.test_client().get("/_boom?lang=zh-Hant")
    html = response.get_data(as_text=True)
    assert response.status_code == 500 and "secret detail" not in html
    assert h1(html) == "來電查證目前無法使用。"


# --- 7. No code = not us -------------------------------------------------------------------

def test_the_first_page_says_no_code_means_not_us_and_offers_the_report(web: Web) -> None:
    html = web.client.get("/").get_data(as_text=True)
    assert "No call code? Then the call is not from us. Hang up." in visible_text(html)
    assert 'href="/report?lang=en"' in html
    form = web.client.get("/report?lang=zh-Hant")
    assert form.status_code == 200 and 'name="number"' in form.get_data(as_text=True)


# --- 9 / 13.19. Our outage -----------------------------------------------------------------

@pytest.mark.parametrize("lang,words", [
    ("en", ("The check is not working right now.", "Hang up and call us on")),
    ("zh-Hant", ("來電查證目前無法使用。", "請掛斷電話，撥打")),
    ("zh-Hans", ("来电查证目前无法使用。", "请挂断电话，拨打")),
])
def test_our_outage_has_its_own_honest_page_and_a_503(
        web: Web, monkeypatch: pytest.MonkeyPatch, lang: str, words: tuple[str, str]) -> None:
    call: IssuedTicket = issue(web)
    with web.app.app_context():
        flow = services().flow

    def down(*_a: Any, **_k: Any) -> CheckStep:
        raise StoreError("the database is unavailable")

    monkeypatch.setattr(flow, "lookup", down)
    response = submit(web.client, "/verify", lang, code=call.code)
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    text = visible_text(html)
    assert all(w in text for w in words) and "+886 2 1234 5678" in text
    assert 'href="tel:+886212345678"' in html
    with web.app.test_request_context(f"/?lang={lang}"):
        from flask_babel import gettext

        for scam_words in ("We cannot confirm this call.",
                           "A caller who says this check is broken is lying."):
            assert gettext(scam_words) not in text


# --- every new page, in Chinese, has no English left --------------------------------------

_LATIN_DATA = {"Example", "Shop", "shop.example/call", "shop.example", "App", "QR", "English",
               "iPhone", "Android", "SIM"}


@pytest.mark.parametrize("lang", ["zh-Hant", "zh-Hans"])
def test_the_new_pages_have_no_english_left(web: Web, monkeypatch: pytest.MonkeyPatch,
                                            lang: str) -> None:
    call = issue(web)
    client = web.client
    pages = [follow(client, submit(client, "/verify", lang, code=typo_of(call.code))),
             client.get(f"/report?lang={lang}"),
             submit(client, "/report", lang, number="x", text="y" * 600),
             client.get(f"/nope?lang={lang}"), client.get(f"/verify/word?lang={lang}")]
    follow(client, submit(client, "/verify", lang, code=call.code))
    pages.append(follow(client, submit(client, "/verify/number", lang, answer="unsure",
                                       t=call.ticket_id)))
    with web.app.app_context():
        monkeypatch.setattr(services().flow, "lookup", lambda *_a, **_k: (_ for _ in ()).throw(
            StoreError("down")))
    pages.append(submit(client, "/verify", lang, code=call.code))
    for response in pages:
        html = response.get_data(as_text=True)
        assert f'<html lang="{lang}">' in html
        text = visible_text(re.sub(r"<textarea[^>]*>[^<]*</textarea>", "", html))
        words = set(re.findall(r"[A-Za-z][A-Za-z./-]+", text))
        assert words <= _LATIN_DATA, (response.request.path, sorted(words - _LATIN_DATA))


def test_over_https_the_page_cookie_is_host_prefixed_like_the_claim_cookie(
        web: Web, make_app: Callable[..., Flask]) -> None:
    client = make_app(HTTPS=True).test_client()
    base = "https://shop.example"
    page = client.get("/", base_url=base).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    sent = client.post("/verify", base_url=base, data={"csrf_token": token.group(1),
                                                        "code": "12345678"},
                       headers={"Origin": base, "Referer": base + "/"})  # the page's own form
    cookie = next(c for c in sent.headers.getlist("Set-Cookie") if "cp_page=" in c)
    assert cookie.startswith("__Host-cp_page=format-12345678;")
    assert "Secure" in cookie and "Path=/;" in cookie and "HttpOnly" in cookie
    shown = client.get(sent.headers["Location"], base_url=base).get_data(as_text=True)
    assert 'value="123 456 78"' in shown
