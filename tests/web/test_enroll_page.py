"""The enrolment page (verifier_app/enroll.py) through the Flask test client: a single-use token
binds one visit, the QR code and its key, one current code to confirm, the call phrase, and a
clear page for every link that no longer works.
"""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from callproof import FixedClock
from callproof.protocol.clock import to_epoch
from verifier_app import services

from ..conftest import T0
from ..proofs.otp_by_hand import key_of
from ..proofs.otp_by_hand import totp as totp_by_hand
from .conftest import Web

REF = "C-3003"


def new_token(web: Web, ref: str = REF) -> str:
    with web.app.app_context():
        return services().enrolled.create_enrollment(ref).token


def enrolled(web: Web, ref: str = REF) -> dict[str, object]:
    with web.app.app_context():
        return services().enrolled.enrolled(customer_ref=ref)


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page has a CSRF token"
    return match.group(1)


def secret_of(page: str) -> str:
    match = re.search(r'class="enroll-secret"[^>]*>([A-Z2-7 ]+)<', page)
    assert match, "the page shows the key as text"
    return match.group(1).replace(" ", "")


def use_link(client: FlaskClient, token: str, lang: str = "en") -> TestResponse:
    """Open the link (a page with a button) and press the button (a POST that uses it)."""
    page = client.get(f"/enroll/{token}?lang={lang}")
    assert page.status_code in (200, 303), text(page)
    if page.status_code == 303:  # this visit's own link again: straight to its step
        return page
    return client.post(f"/enroll/{token}", data={"csrf_token": csrf_of(text(page)),
                                                 "lang": lang})


def open_visit(web: Web, client: FlaskClient | None = None, lang: str = "en") -> str:
    """Open a fresh token in ``client``; the app step's page."""
    client = client or web.client
    opened = use_link(client, new_token(web), lang)
    assert opened.status_code == 303, text(opened)
    assert opened.headers["Location"] == f"/enroll/app?lang={lang}"
    page = client.get(opened.headers["Location"])
    assert page.status_code == 200
    return text(page)


def code_now(web: Web, secret: str, clock: FixedClock) -> str:
    return totp_by_hand(key_of(secret), to_epoch(clock.now()))


def confirm(web: Web, page: str, code: str) -> TestResponse:
    return web.client.post("/enroll/app/confirm",
                           data={"csrf_token": csrf_of(page), "code": code, "lang": "en"})


def test_the_app_step_shows_a_qr_code_the_key_and_what_the_code_is_for(web: Web) -> None:
    page = open_visit(web)
    assert "<svg" in page and 'role="img"' in page and "aria-label=" in page
    assert "<img" not in page.split("<main", 1)[1]  # inline SVG, nothing for img-src
    assert len(secret_of(page)) == 32  # 160 bits in base32
    assert "only for checking that a call is really from" in page
    assert "We will never ask you to read it to anyone." in page
    assert "You compare it with the code our agent reads to you." in page
    assert REF not in page  # no personal data on the page
    assert enrolled(web)["totp"] == "pending"


def test_a_reload_or_a_language_switch_keeps_the_same_qr_code(web: Web) -> None:
    first = secret_of(open_visit(web))
    again = web.client.get("/enroll/app?lang=zh-Hant")
    assert 'lang="zh-Hant"' in text(again)
    assert secret_of(text(again)) == first
    assert "secret=" not in web.client.get_cookie("cp_session").value  # sealed, not in clear


def test_the_right_code_confirms_the_app_and_leads_to_the_phrase(web: Web,
                                                                 clock: FixedClock) -> None:
    page = open_visit(web)
    response = confirm(web, page, code_now(web, secret_of(page), clock))
    assert response.status_code == 303
    assert response.headers["Location"] == "/enroll/phrase?lang=en"
    assert enrolled(web)["totp"] == "confirmed"
    phrase_page = text(web.client.get(response.headers["Location"]))
    assert "Your authenticator app is set up." in phrase_page
    assert "Use this phrase nowhere else." in phrase_page
    assert "Our agent says it. You never do." in phrase_page


def test_a_wrong_code_is_refused_with_an_error_summary(web: Web, clock: FixedClock) -> None:
    page = open_visit(web)
    right = code_now(web, secret_of(page), clock)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    response = confirm(web, page, wrong)
    assert response.status_code == 400
    body = text(response)
    assert 'class="error-summary"' in body and 'href="#code"' in body
    assert "That code does not match." in body and 'aria-invalid="true"' in body
    assert wrong not in body.replace(secret_of(body), "")
    assert enrolled(web)["totp"] == "pending"
    assert secret_of(body) == secret_of(page)  # the same QR code: try again
    not_digits = confirm(web, page, "12ab56")
    assert not_digits.status_code == 400 and "Use digits only." in text(not_digits)


def test_the_same_code_replayed_is_refused(web: Web, clock: FixedClock) -> None:
    page = open_visit(web)
    code = code_now(web, secret_of(page), clock)
    assert confirm(web, page, code).status_code == 303
    replayed = confirm(web, page, code)
    assert replayed.status_code == 400
    assert "That code was already used." in text(replayed)


def test_five_wrong_codes_give_a_new_qr_code(web: Web, clock: FixedClock) -> None:
    page = open_visit(web)
    right = code_now(web, secret_of(page), clock)
    wrong = f"{(int(right) + 500_000) % 1_000_000:06d}"
    for _ in range(4):
        assert confirm(web, page, wrong).status_code == 400
    last = confirm(web, page, wrong)
    assert "We made a new QR code." in text(last)
    assert secret_of(text(last)) != secret_of(page)


def test_codes_typed_with_spaces_or_full_width_digits_are_accepted(web: Web,
                                                                    clock: FixedClock) -> None:
    page = open_visit(web)
    code = code_now(web, secret_of(page), clock)
    typed = f"{code[:3]} {code[3:]}".translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert confirm(web, page, typed).status_code == 303


@pytest.mark.parametrize(("phrase", "says"), [
    ("abc", "too short"),
    ("x" * 65, "too long"),
    ("2468 1357 99", "cannot be only digits"),
    ("4111 1111 1111 1111", "looks like a card number"),
])
def test_a_phrase_that_breaks_the_rules_is_refused_and_never_echoed(web: Web, phrase: str,
                                                                     says: str) -> None:
    open_visit(web)
    page = text(web.client.get("/enroll/phrase"))
    response = web.client.post("/enroll/phrase", data={"csrf_token": csrf_of(page),
                                                       "phrase": phrase, "lang": "en"})
    assert response.status_code == 400
    body = text(response)
    assert says in body and 'class="error-summary"' in body and 'href="#phrase"' in body
    assert phrase not in body
    assert enrolled(web)["phrase"] is False


def test_setting_a_phrase_finishes_and_the_visit_then_only_shows_the_summary(web: Web) -> None:
    open_visit(web)
    page = text(web.client.get("/enroll/phrase"))
    response = web.client.post("/enroll/phrase", data={"csrf_token": csrf_of(page),
                                                       "phrase": "blue heron at dawn",
                                                       "lang": "en"})
    assert response.status_code == 303 and response.headers["Location"] == "/enroll/done?lang=en"
    done = text(web.client.get("/enroll/done"))
    assert "Your call phrase: set up." in done
    assert "The app code in your authenticator app: not set up." in done
    assert "blue heron" not in done
    assert enrolled(web)["phrase"] is True
    assert web.client.get("/enroll/app").headers["Location"] == "/enroll/done?lang=en"


def test_both_steps_can_be_skipped(web: Web) -> None:
    page = open_visit(web)
    assert 'href="/enroll/phrase?lang=en"' in page
    phrase = text(web.client.get("/enroll/phrase?lang=en"))
    assert 'href="/enroll/done?lang=en"' in phrase
    done = text(web.client.get("/enroll/done?lang=en"))
    assert "Your call phrase: not set up." in done


def test_a_used_token_gets_a_clear_page_but_this_visit_goes_on(web: Web) -> None:
    token = new_token(web)
    assert use_link(web.client, token).status_code == 303
    assert web.client.get(f"/enroll/{token}?lang=zh-Hans").headers["Location"] == \
        "/enroll/app?lang=zh-Hans"  # the same visit: a reload or a language switch
    elsewhere = use_link(web.app.test_client(), token, "zh-Hant")
    assert elsewhere.status_code == 410
    body = text(elsewhere)
    assert 'lang="zh-Hant"' in body and "這個設定連結已經用過了" in body
    assert "從那裡重新開啟設定" in body
    assert 'role="alert"' in body


def test_an_expired_token_gets_a_clear_page(web: Web, clock: FixedClock) -> None:
    token = new_token(web)
    clock.advance(seconds=15 * 60)
    response = use_link(web.client, token)
    assert response.status_code == 410
    assert "This set-up link has expired" in text(response)
    assert "15 minutes" in text(response)


def test_an_unknown_token_gets_a_clear_page(web: Web) -> None:
    for token in ("enr_nope", "nothing", "enr_" + "A" * 300):
        response = use_link(web.client, token)
        assert response.status_code == 404
        assert "This set-up link is not valid" in text(response)


def test_the_visit_expires_with_the_token(web: Web, clock: FixedClock) -> None:
    page = open_visit(web)
    clock.advance(seconds=15 * 60)
    for response in (web.client.get("/enroll/app"), web.client.get("/enroll/phrase"),
                     confirm(web, page, "123456")):
        assert response.status_code == 410
        assert "This set-up page has expired" in text(response)


def test_no_visit_no_page(web: Web) -> None:
    for path in ("/enroll/app", "/enroll/phrase", "/enroll/done"):
        response = web.client.get(path)
        assert response.status_code == 410, path


def test_every_form_needs_the_csrf_token(web: Web, clock: FixedClock) -> None:
    page = open_visit(web)
    code = code_now(web, secret_of(page), clock)
    for path, data in (("/enroll/app/confirm", {"code": code}),
                       ("/enroll/app/restart", {}),
                       ("/enroll/phrase", {"phrase": "blue heron at dawn"})):
        response = web.client.post(path, data={**data, "csrf_token": "forged"})
        assert response.status_code == 400, path
        assert "Nothing was changed." in text(response)
    assert enrolled(web) == {"totp": "pending", "phrase": False}


def test_a_confirmed_app_is_not_replaced_unless_asked(web: Web, clock: FixedClock) -> None:
    page = open_visit(web)
    confirm(web, page, code_now(web, secret_of(page), clock))
    again = open_visit(web, web.app.test_client())
    assert "already set up" in again and "<svg" not in again.split("<main", 1)[1]
    assert enrolled(web)["totp"] == "confirmed"


def test_the_pages_send_the_security_headers(web: Web) -> None:
    open_visit(web)
    response = web.client.get("/enroll/app")
    assert "img-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert T0.year == 2026


def test_a_finished_visit_changes_nothing_more(web: Web) -> None:
    page = open_visit(web)
    web.client.get("/enroll/done")
    response = web.client.post("/enroll/phrase", data={"csrf_token": csrf_of(page),
                                                       "phrase": "blue heron at dawn"})
    assert response.status_code == 303 and response.headers["Location"].startswith("/enroll/done")
    assert enrolled(web)["phrase"] is False


def test_opening_the_link_uses_nothing_only_the_button_does(web: Web) -> None:
    """A link preview (a chat app, a mail scanner) fetches the link with a GET: it must not use
    the single-use token up. The page has one button; its POST uses it."""
    token = new_token(web)
    for client in (web.app.test_client(), web.app.test_client()):  # two previews
        page = client.get(f"/enroll/{token}?lang=zh-Hant")
        body = text(page)
        assert page.status_code == 200 and "開始設定" in body
        assert f'<form method="post" action="/enroll/{token}">' in body
        assert page.headers["Cache-Control"] == "no-store"
    assert enrolled(web) == {"totp": None, "phrase": False}
    assert use_link(web.client, token).headers["Location"] == "/enroll/app?lang=en"
    assert enrolled(web)["totp"] == "pending"
    # The button needs its CSRF token: a forged POST uses nothing.
    other = new_token(web, "C-3004")
    forged = web.app.test_client().post(f"/enroll/{other}", data={"csrf_token": "forged"})
    assert forged.status_code == 400
    assert use_link(web.app.test_client(), other).status_code == 303


@pytest.mark.parametrize(("lang", "add", "app_code", "call_code"), [
    ("en", "Add to authenticator app", "6-digit app code", "call code"),
    ("zh-Hant", "加入驗證 App", "App 動態碼", "來電"),
    ("zh-Hans", "添加到验证器 App", "App 动态码", "来电"),
])
def test_the_app_step_offers_the_otpauth_link_and_says_app_code(
        web: Web, clock: FixedClock, lang: str, add: str, app_code: str,
        call_code: str) -> None:
    """Item 22: on a phone the customer taps "add to authenticator app" (the otpauth:// link)
    beside the QR code; the 6-digit code is an "app code", never a "call code"."""
    from urllib.parse import parse_qs, unquote, urlsplit

    page = open_visit(web, lang=lang)
    link = re.search(r'<a class="button" id="add-to-app" href="([^"]+)">([^<]+)</a>', page)
    assert link, page
    assert link.group(2) == add
    uri = urlsplit(link.group(1).replace("&amp;", "&"))
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    assert "Example Shop" in unquote(uri.path)
    query = parse_qs(uri.query)
    assert query["secret"] == [secret_of(page)]  # the same key as the QR code and the text
    assert page.index('id="add-to-app"') < page.index('class="enroll-qr"')  # beside the QR
    main = page.split("<main", 1)[1].split("</main>", 1)[0]
    assert app_code in main
    if lang == "en":
        assert "call code" not in main.lower()
    else:  # "來電確認碼" / "來電碼" is the call code's word; the app's code is not one
        assert f"{call_code}確認碼" not in main and f"{call_code}碼" not in main \
            and f"{call_code}确认码" not in main and f"{call_code}码" not in main
    # The link works as the QR code does: its key confirms the app.
    response = web.client.post("/enroll/app/confirm", data={
        "csrf_token": csrf_of(page), "code": code_now(web, query["secret"][0], clock),
        "lang": lang})
    assert response.status_code == 303 and enrolled(web)["totp"] == "confirmed"
    done = text(web.client.get(f"/enroll/done?lang={lang}"))
    assert app_code.split()[-1] in done.split("<main", 1)[1]
