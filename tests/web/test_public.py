"""The customer's check page through the Flask test client (issue #3, DESIGN §3.1 and §7)."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser

import pytest
from flask import Flask

from callproof import IssuedTicket
from verifier_app import services

from .conftest import Web

FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def issue(web: Web, phone: str | None = "+886912345678") -> IssuedTicket:
    with web.app.app_context():
        return services().issuer.issue(agent_id="a-001", reason="payment_failed", phone=phone)


def right_word(web: Web, call: IssuedTicket) -> str:
    with web.app.app_context():
        word = services().issuer.status(call.ticket_id).check_word
    assert word is not None
    return word.id


def h1(html: str) -> str:
    match = re.search(r"<h1>(.*?)</h1>", html, re.S)
    assert match, html
    return match.group(1).strip()


def post(web: Web, path: str, **data: str) -> tuple[int, str]:
    """Submit a form as a browser does: its 303 is followed to the page it names (PRG)."""
    token = web.csrf()
    response = web.client.post(path, data={"csrf_token": token, **data}, follow_redirects=True)
    return response.status_code, response.get_data(as_text=True)


class _Text(HTMLParser):
    """The text a person sees (no tags, scripts or attribute values)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def test_the_whole_check_with_messy_input(web: Web) -> None:
    call = issue(web)
    typed = "  " + call.code_display.translate(FULLWIDTH).replace(" ", "－") + " "
    status, html = post(web, "/verify", code=typed)
    assert status == 200 and h1(html) == "Does the phone in your hand end in 5678?"
    assert call.code not in html and call.code_display not in html  # never echoed
    status, html = post(web, "/verify/number", answer="yes", t=call.ticket_id)
    assert h1(html) == "Ask the caller for the check word, and tap the one you hear."
    assert "Mei Lin" in html and "A payment for your order did not go through" in html
    assert len(re.findall(r'name="word" value="', html)) == 6
    status, html = post(web, "/verify/word", word=right_word(web, call), t=call.ticket_id)
    assert status == 200 and h1(html) == "This is Example Shop."
    assert "This check covers only this agent on this call." in html
    assert "If the call drops, the next caller needs a new code." in html


def test_the_claim_cookie_is_first_party_httponly_strict_and_only_for_the_flow(web: Web) -> None:
    call = issue(web)
    response = web.client.post("/verify", data={"csrf_token": web.csrf(), "code": call.code})
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("cp_claim=") and "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie and "Path=/verify" in cookie and "Domain" not in cookie
    names = {c.key for c in web.client._cookies.values()}  # noqa: SLF001 - the test client's jar
    assert names <= {"cp_claim", "cp_session"}  # no tracking cookies, only the claim and CSRF


FAILURES = ["not_found", "no", "wrong_word", "second_device", "closed", "expired"]


def _fail(web: Web, how: str) -> str:
    call = issue(web)
    if how == "not_found":
        return post(web, "/verify", code="000000000")[1]
    if how == "closed":
        with web.app.app_context():
            services().issuer.close(call.ticket_id)
        return post(web, "/verify", code=call.code)[1]
    if how == "expired":
        web.clock.advance(seconds=901)
        return post(web, "/verify", code=call.code)[1]
    post(web, "/verify", code=call.code)
    if how == "no":
        return post(web, "/verify/number", answer="no", t=call.ticket_id)[1]
    if how == "second_device":
        other = web.app.test_client()
        token = re.search(r'name="csrf_token" value="([^"]+)"',
                          other.get("/").get_data(as_text=True))
        assert token
        return other.post("/verify", data={"csrf_token": token.group(1), "code": call.code},
                          follow_redirects=True).get_data(as_text=True)
    html = post(web, "/verify/number", answer="yes", t=call.ticket_id)[1]
    right = right_word(web, call)
    wrong = next(w for w in re.findall(r'name="word" value="([^"]+)"', html) if w != right)
    return post(web, "/verify/word", word=wrong, t=call.ticket_id)[1]


def _normalise(html: str) -> str:
    html = re.sub(r'name="csrf_token" value="[^"]+"', "", html)
    return html


@pytest.mark.parametrize("how", FAILURES)
def test_every_failure_shows_the_same_page(web: Web, how: str) -> None:
    html = _fail(web, how)
    assert h1(html) == "We cannot confirm this call."
    text = visible_text(html)
    assert "Hang up now." in text
    assert "+886 2 1234 5678" in text and "165 anti-fraud hotline" in text
    assert "A caller who says this check is broken is lying." in text
    reference = _normalise(post(web, "/verify", code="000000000")[1])
    # Same layout, same words, whatever the cause; a second device also reads one more line.
    elsewhere = "<p>This call code was already checked on another device.</p>"
    assert (elsewhere in html) == (how == "second_device")
    assert _normalise(html.replace(elsewhere, "")) == reference


def test_a_typo_is_the_one_different_page(web: Web) -> None:
    call = issue(web)
    typo = call.code[:-1] + str((int(call.code[-1]) + 1) % 10)
    status, html = post(web, "/verify", code=typo)
    assert status == 400 and "Check the code and type it again" in html
    assert typo not in html and 'aria-invalid="true"' in html
    status, html = post(web, "/verify", code="12345abc9")
    assert status == 400 and "Use digits only" in html
    # A typo is not a failed lookup: the real code still works from this browser.
    assert h1(post(web, "/verify", code=call.code)[1]).startswith("Does the phone")


def test_forms_need_the_csrf_token(web: Web) -> None:
    call = issue(web)
    response = web.client.post("/verify", data={"code": call.code})
    assert response.status_code == 400
    assert "Type the call code again" in response.get_data(as_text=True)
    with web.app.app_context():
        assert services().issuer.status(call.ticket_id).state == "issued"  # nothing changed


def test_an_oversized_form_is_refused_and_changes_nothing(web: Web) -> None:
    response = web.client.post("/verify", data={"csrf_token": web.csrf(),
                                                 "code": "1" * 20000})
    assert response.status_code == 413


@pytest.mark.parametrize("accept,lang,heading", [
    ("zh-TW,zh;q=0.9", "zh-Hant", "現在打給您的，真的是 Example Shop 嗎？"),
    ("zh-HK", "zh-Hant", "現在打給您的，真的是 Example Shop 嗎？"),
    ("zh-CN,zh;q=0.9", "zh-Hans", "现在打给您的，真的是 Example Shop 吗？"),
    ("zh", "zh-Hans", "现在打给您的，真的是 Example Shop 吗？"),
    ("en-GB", "en", "Is Example Shop calling you right now?"),
    ("fr-FR", "en", "Is Example Shop calling you right now?"),
])
def test_accept_language_chooses(web: Web, accept: str, lang: str, heading: str) -> None:
    html = web.client.get("/", headers={"Accept-Language": accept}).get_data(as_text=True)
    assert f'<html lang="{lang}">' in html and h1(html) == heading


def test_the_visible_switch_works_without_javascript(web: Web) -> None:
    html = web.client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    links = dict(re.findall(r'<a href="([^"]+)" lang="([^"]+)"', html))
    assert set(links.values()) == {"zh-Hant", "zh-Hans"}
    url = next(u for u, tag in links.items() if tag == "zh-Hant")
    switched = web.client.get(url.replace("&amp;", "&")).get_data(as_text=True)
    assert '<html lang="zh-Hant">' in switched


# Latin text allowed on a Chinese page: data shown as the registry and the profile hold it (the
# company, the agent's name and team, the page address and its host), "App", "QR" and the
# switch's "English".
_ALLOWED_LATIN = {"Example", "Shop", "shop.example/call", "shop.example", "Mei", "Lin", "Customer",
                  "Care", "App", "QR", "English"}


@pytest.mark.parametrize("lang", ["zh-Hant", "zh-Hans"])
def test_no_english_is_left_on_a_chinese_page(web: Web, lang: str) -> None:
    call = issue(web)
    pages = [web.client.get(f"/?lang={lang}").get_data(as_text=True)]
    token = web.csrf(f"/?lang={lang}")
    def step(path: str, **data: str) -> None:
        pages.append(web.client.post(path, data={"csrf_token": token, "lang": lang, **data},
                                     follow_redirects=True).get_data(as_text=True))

    step("/verify", code=call.code)
    step("/verify/number", answer="yes", t=call.ticket_id)
    step("/verify/word", word=right_word(web, call), t=call.ticket_id)
    step("/verify", code="000000000")
    step("/report", number="nonsense")
    for html in pages:
        assert f'<html lang="{lang}">' in html
        words = set(re.findall(r"[A-Za-z][A-Za-z./-]+", visible_text(html)))
        assert words <= _ALLOWED_LATIN, sorted(words - _ALLOWED_LATIN)


@pytest.mark.parametrize("lang", ["en", "zh-Hant", "zh-Hans"])
def test_the_failure_page_names_the_hotline_in_the_notice_cards_words(web: Web, lang: str) -> None:
    """One home for the hotline's words: the page says exactly what the printed card says."""
    from callproof.notice import hotline_text

    token = web.csrf(f"/?lang={lang}")
    html = web.client.post("/verify", data={"csrf_token": token, "lang": lang,
                                            "code": "000000000"},
                           follow_redirects=True).get_data(as_text=True)
    assert hotline_text(lang, "TW", "165") in visible_text(html)


def test_security_headers_on_every_page(web: Web) -> None:
    for path in ("/", "/verify/failed", "/.well-known/callproof/jwks.json", "/healthz"):
        h = web.client.get(path).headers
        csp = h["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert "default-src 'none'" in csp
        assert h["Referrer-Policy"] == "no-referrer" and h["X-Content-Type-Options"] == "nosniff"
        policy = h["Permissions-Policy"]
        assert "camera=()" in policy and "geolocation=()" in policy
        assert "Strict-Transport-Security" not in h
    over_https = web.client.get("/", base_url="https://shop.example").headers
    assert over_https["Strict-Transport-Security"].startswith("max-age=")


def test_pages_load_nothing_from_other_sites(web: Web) -> None:
    for html in (web.client.get("/").get_data(as_text=True), _fail(web, "not_found")):
        assert not re.search(r'(src|href)="(https?:)?//', html)
        assert "<script" not in html and "style=" not in html


def _set_limits(web: Web, **values: int) -> None:
    """Edit the data dir's config.toml [limits] as an operator would (apps made after see it)."""
    config_file = web.path / "config.toml"
    text = config_file.read_text("utf-8")
    for name, value in values.items():
        text, n = re.subn(rf"(?m)^{name} = \d+", f"{name} = {value}", text)
        assert n == 1, f"config.toml sets {name}"
    config_file.write_text(text, "utf-8")


def test_failed_lookups_are_limited_per_client_and_successes_do_not_count(
        web: Web, make_app: Callable[..., Flask]) -> None:
    _set_limits(web, client_failure_limit=3)  # the library's per-address limit decides
    app = make_app()
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").get_data(as_text=True))
    assert token
    with app.app_context():
        calls = [services().issuer.issue(agent_id="a-001", reason="payment_failed")
                 for _ in range(6)]

    def lookup(code: str, address: str = "203.0.113.9") -> str:
        return client.post("/verify", data={"csrf_token": token.group(1), "code": code},
                           environ_base={"REMOTE_ADDR": address},
                           follow_redirects=True).get_data(as_text=True)

    for call in calls[:3]:  # successes are free
        assert h1(lookup(call.code)).startswith("Ask the caller")
    for _ in range(3):
        assert h1(lookup("000000000")) == "We cannot confirm this call."
    assert h1(lookup(calls[3].code)) == "We cannot confirm this call."  # limited: safe failure
    assert h1(lookup(calls[4].code, "203.0.113.10")).startswith("Ask the caller")
    # One IPv6 subscriber is one /64, whatever address in it they use.
    for suffix in ("1", "2", "3"):
        lookup("000000000", f"2001:db8:1:2::{suffix}")
    assert h1(lookup(calls[5].code, "2001:db8:1:2::99")) == "We cannot confirm this call."


def test_the_client_address_comes_from_the_socket_unless_proxies_are_trusted(
        web: Web, make_app: Callable[..., Flask]) -> None:
    from verifier_app.security import client_key

    app = web.app
    with app.test_request_context("/", environ_base={"REMOTE_ADDR": "198.51.100.1"},
                                  headers={"X-Forwarded-For": "203.0.113.50"}):
        assert client_key() == "198.51.100.1"
    proxied = make_app(TRUSTED_PROXIES=1)

    @proxied.get("/_whoami")
    def whoami() -> str:
        return client_key()

    got = proxied.test_client().get("/_whoami", environ_base={"REMOTE_ADDR": "10.0.0.1"},
                                    headers={"X-Forwarded-For": "203.0.113.50"})
    assert got.get_data(as_text=True) == "203.0.113.50"


def test_a_report_is_stored_and_logged_without_what_was_typed(web: Web) -> None:
    status, html = post(web, "/report", number="02 2345 6789", asked="refund",
                        text="He said my order was charged twice")
    assert status == 200 and "Thank you for telling us." in html
    from sqlalchemy import select

    from callproof.store import schema
    from callproof.store.events import read_events

    with web.app.app_context():
        dep = services().deployment
        with dep.store.read() as conn:
            [row] = conn.execute(select(schema.scam_reports)).all()
            events = [e for e in read_events(conn, dep.issuer_id) if e.type == "report.filed"]
    assert row.caller_number == "+886223456789" and row.scripts == "refund"
    assert len(events) == 1 and events[0].data["scripts"] == ["refund"]
    assert b"charged twice" not in events[0].to_bytes() and b"2345" not in events[0].to_bytes()
    status, html = post(web, "/report", number="not a number at all")
    assert status == 400 and "does not look right" in html


def test_a_nul_character_anywhere_in_a_form_is_refused_before_it_reaches_the_store(
        web: Web) -> None:
    """PostgreSQL cannot store U+0000: it is refused at the edge on every backend alike."""
    from sqlalchemy import func, select

    from callproof.store import schema

    status, html = post(web, "/report", asked="refund", text="he said\x00refund")
    assert status == 400 and "Something went wrong." in html
    status, html = post(web, "/verify/word", t="t_\x00", word="w")
    assert "We cannot confirm this call." in html
    status, html = post(web, "/console/sign-in", agent_id="a-001\x00", password="x")
    assert status == 400 and "Something went wrong." in html
    with web.app.app_context(), services().deployment.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(schema.scam_reports)).scalar() == 0


def test_jwks_and_health(web: Web) -> None:
    response = web.client.get("/.well-known/callproof/jwks.json")
    assert response.json["keys"][0]["alg"] == "Ed25519"  # type: ignore[index]
    assert "max-age=60" in response.headers["Cache-Control"]
    assert web.client.get("/healthz").json == {"status": "ok"}


def test_limits_are_shared_through_redis_by_several_instances(
        web: Web, make_app: Callable[..., Flask], redis_url: str) -> None:
    import secrets

    _set_limits(web, client_failure_limit=2)  # counted in the database, by the library
    config = {"RATELIMIT_STORAGE_URI": redis_url,
              "RATELIMIT_KEY_PREFIX": f"cp-test-{secrets.token_hex(4)}"}
    first, second = make_app(**config), make_app(**config)
    with first.app_context():
        call = services().issuer.issue(agent_id="a-001", reason="payment_failed")

    def lookup(app: Flask, code: str) -> str:
        client = app.test_client()
        token = re.search(r'name="csrf_token" value="([^"]+)"',
                          client.get("/").get_data(as_text=True))
        assert token
        return client.post("/verify", data={"csrf_token": token.group(1), "code": code},
                           environ_base={"REMOTE_ADDR": "192.0.2.44"},
                           follow_redirects=True).get_data(as_text=True)

    assert h1(lookup(first, "000000000")) == "We cannot confirm this call."
    assert h1(lookup(second, "000000000")) == "We cannot confirm this call."
    # Two failures on two instances: the third lookup is refused, even with the right code.
    assert h1(lookup(first, call.code)) == "We cannot confirm this call."


def test_the_worker_signs_checkpoints_and_the_server_publishes_the_latest(
        web: Web, make_app: Callable[..., Flask]) -> None:
    from callproof.audit.duties import standard_duties
    from callproof.audit.log import AuditLog
    from callproof.tlog import note
    from callproof.worker import Worker

    app = make_app()
    client = app.test_client()
    assert client.get("/.well-known/callproof/checkpoint").status_code == 404
    with app.app_context():
        dep = services().deployment
        services().issuer.issue(agent_id="a-001", reason="payment_failed")
        vkey = AuditLog(dep).vkey()
        assert Worker(dep, standard_duties(dep)).run_once()["log"]  # `callproof worker`'s round
    response = client.get("/.well-known/callproof/checkpoint")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    opened = note.open_note(response.get_data(as_text=True), [note.Verifier.parse(vkey)])
    checkpoint = note.Checkpoint.from_text(opened.text)
    assert checkpoint.origin.endswith("/callproof-log") and checkpoint.size > 0


def test_the_company_logo_comes_from_the_data_dir_or_nowhere(
        web: Web, make_app: Callable[..., Flask]) -> None:
    assert web.client.get("/brand/logo").status_code == 404
    assert "/brand/logo" not in web.client.get("/").get_data(as_text=True)
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    (web.path / "logo.svg").write_bytes(svg)
    config = (web.path / "config.toml").read_text()
    (web.path / "config.toml").write_text(
        config.replace('hotline = "165"', 'hotline = "165"\nlogo = "logo.svg"'))
    app = make_app()
    client = app.test_client()
    assert 'src="/brand/logo"' in client.get("/").get_data(as_text=True)
    response = client.get("/brand/logo")
    assert response.data == svg and response.mimetype == "image/svg+xml"
    (web.path / "config.toml").write_text(
        config.replace('hotline = "165"', 'hotline = "165"\nlogo = "../../etc/passwd"'))
    assert make_app().test_client().get("/brand/logo").status_code == 404


def test_the_phone_question_says_what_a_wrong_number_means(web: Web) -> None:
    call = issue(web)
    status, html = post(web, "/verify", code=call.code)
    assert "If it is not the phone in your hand, this call is not from us. Tap No." in html


def test_the_report_form_says_when_a_connection_has_filed_too_many(web: Web) -> None:
    """Hardening item 3, on the page: past the hour's limit for the address, the form says so
    at the top, in the page's language, and keeps nothing."""
    for _ in range(5):  # reports_per_address_hour
        status, _html = post(web, "/report", asked="refund", number="+886 2 2345 6789")
        assert status in (200, 303)
    status, html = post(web, "/report", asked="refund", number="+886 2 2345 6789")
    assert status == 400
    assert "Many reports came from this connection in the last hour" in visible_text(html)
    token = web.csrf("/report?lang=zh-Hant")
    page = web.client.post("/report", data={"csrf_token": token, "lang": "zh-Hant",
                                            "asked": "refund"}).get_data(as_text=True)
    assert "這個網路連線已送出許多通報" in visible_text(page)
