"""The agent console, experience issue 14 items 10–14, through the Flask test client: every
call of the agent in "Your recent calls", the check word as the customer sees it, the reveal
button, the customer reference on console calls, and the script line."""

from __future__ import annotations

import re
from typing import Any

import pytest

from callproof.proofs import totp as otp
from callproof.protocol import events
from verifier_app import services

from ..proofs.otp_by_hand import key_of
from ..proofs.otp_by_hand import totp as totp_by_hand
from .conftest import Web
from .test_console import Customer, agents, code_on, csrf, issue, page, sign_in, status

__all__ = ["agents"]  # the fixture, used by name below

REF = "C-1001"
PHRASE = "blue heron at dawn"


def _customer_in(web: Web, lang: str) -> Customer:
    """A customer whose check page is in ``lang`` (the language switch sets it on each form)."""
    customer = Customer(web)
    real = customer.post

    def post(path: str, **data: str) -> str:
        return real(path, lang=lang, **data)

    customer.post = post  # type: ignore[method-assign]
    return customer


def _events(web: Web, type_: str) -> list[events.Event]:
    from callproof.store.events import read_events

    with web.app.app_context():
        d = services().deployment
        with d.store.read() as conn:
            return [e for e in read_events(conn, d.issuer_id) if e.type == type_]


# --- 10. every call of the agent --------------------------------------------------------------

def test_recent_calls_list_every_call_of_the_agent_however_issued(agents: Web) -> None:
    sign_in(agents.client)
    mine = issue(agents.client)
    with agents.app.app_context():  # the issuer API, the CLI and the demo issue like this
        elsewhere = services().issuer.issue(agent_id="a-001", reason="payment_failed").ticket_id
        other_agent = services().issuer.issue(agent_id="a-002", reason="card_expiring")
        services().issuer.close(elsewhere)
    html = agents.client.get("/console/").get_data(as_text=True)
    listed = re.findall(r'href="/console/tickets/([^"?]+)\?lang=en">([^<]+)</a> '
                        r'<span class="hint">([^<]+)</span>', html)
    # Both started at 09:30 on the test's clock (same second: either order).
    assert sorted(listed) == sorted([
        (elsewhere, "A payment for your order did not go through", "09:30 UTC, closed"),
        (mine, "A question about the delivery of your order",
         "09:30 UTC, waiting for the customer")])
    assert other_agent.ticket_id not in html
    # The API's call opens on the console too (its code shows only where it was started).
    html = page(agents.client, elsewhere)
    assert "Reason: A payment for your order did not go through" in html
    html = agents.client.get("/console/?lang=zh-Hant").get_data(as_text=True)
    assert "09:30 UTC，已結束" in html and "09:30 UTC，等待顧客輸入" in html


# --- 11. the check word as the customer sees it ---------------------------------------------

@pytest.mark.parametrize(("customer_lang", "native"), [
    ("zh-Hant", "繁體中文"), ("zh-Hans", "简体中文"), ("en", "English")])
def test_the_check_word_shows_in_the_customers_page_language(
        agents: Web, customer_lang: str, native: str) -> None:
    sign_in(agents.client)
    ticket_id = issue(agents.client)
    customer = _customer_in(agents, customer_lang)
    customer.type_code(code_on(page(agents.client, ticket_id)))
    customer.answer(ticket_id, "yes")
    with agents.app.app_context():
        word = services().issuer.status(ticket_id).check_word
    assert word is not None
    seen = word.text(customer_lang)
    for console_lang, note in (("en", f"The customer's page is in {native}."),
                               ("zh-Hant", f"顧客的頁面語言是{native}。"),
                               ("zh-Hans", f"顾客的页面语言是{native}。")):
        s = status(agents.client, ticket_id, lang=console_lang)
        assert s["check_word"]["text"] == seen and s["check_word"]["emoji"] == word.emoji
        assert s["check_word"]["language"] == note
        assert seen not in " ".join(s["check_word"]["others"])
    html = page(agents.client, ticket_id)
    assert f'<span id="word-text" lang="{customer_lang}">{seen}</span>' in html
    assert word.emoji in html


# --- 13. a customer for console calls ---------------------------------------------------------

def test_a_console_call_with_a_customer_reference_shows_in_the_app(agents: Web) -> None:
    sign_in(agents.client)
    with agents.app.app_context():
        assert services().enrolled.call_status(REF) == {"calling": False}
    ticket_id = issue(agents.client, customer=REF)
    with agents.app.app_context():
        now = services().enrolled.call_status(REF, lang="zh-Hant")
    assert now["calling"] is True and now["agent_name"] == "林美玲"  # the demo's zh-Hant name
    token = csrf(agents.client, f"/console/tickets/{ticket_id}")
    agents.client.post(f"/console/tickets/{ticket_id}/close", data={"csrf_token": token})
    with agents.app.app_context():
        after = services().enrolled.call_status(REF)
    assert after["calling"] is False and after["last_call"]["agent_name"] == "Mei Lin"


def test_a_bad_customer_reference_is_refused_in_the_agents_language(agents: Web) -> None:
    sign_in(agents.client)
    before = len(_events(agents, events.TICKET_ISSUED))
    for lang, says in (("en", "The customer reference is at most 256"),
                       ("zh-Hant", "顧客編號最多 256 個字母"),
                       ("zh-Hans", "顾客编号最多 256 个字母")):
        token = csrf(agents.client, "/console/")
        response = agents.client.post("/console/tickets", data={
            "csrf_token": token, "reason": "order_delivery", "customer": "C-1\x07", "lang": lang})
        assert response.status_code == 400
        html = response.get_data(as_text=True)
        assert says in html and 'aria-invalid="true"' in html and 'href="#customer"' in html
    assert len(_events(agents, events.TICKET_ISSUED)) == before  # nothing issued


# --- 12. reveal from the console --------------------------------------------------------------

def _enrolled(web: Web) -> str:
    with web.app.app_context():
        proofs = services().enrolled
        enrolment = proofs.enroll_totp(customer_ref=REF)
        proofs.confirm_totp(otp.code_at(enrolment.secret, web.clock.now()), customer_ref=REF)
        proofs.set_phrase(PHRASE, customer_ref=REF)
    return enrolment.secret


def _reveal(web: Web, ticket_id: str, lang: str = "en") -> Any:
    token = csrf(web.client, f"/console/tickets/{ticket_id}")
    return web.client.post(f"/console/tickets/{ticket_id}/reveal",
                           data={"csrf_token": token, "lang": lang})


def test_reveal_only_during_a_connected_call_then_the_code_and_the_phrase(agents: Web) -> None:
    secret = _enrolled(agents)
    sign_in(agents.client)
    ticket_id = issue(agents.client, customer=REF)
    html = page(agents.client, ticket_id)
    assert "once the dialer reports the call connected" in html
    assert re.search(r'<form id="reveal-form"[^>]* hidden>', html)
    assert status(agents.client, ticket_id)["reveal"] == "waiting"
    # Asked anyway (a stale page): refused, said why, an alert in the record, nothing shown.
    response = _reveal(agents, ticket_id)
    assert response.status_code == 409
    assert "the dialer has not reported this call connected yet" in response.get_data(
        as_text=True)
    assert len(_events(agents, events.REVEAL_UNCONNECTED)) == 1

    with agents.app.app_context():
        services().issuer.connected(ticket_id)  # the dialer: the customer picked up
    assert status(agents.client, ticket_id)["reveal"] == "ready"
    agents.clock.advance(seconds=10)
    response = _reveal(agents, ticket_id)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    at = int(agents.clock.now().timestamp())
    code = totp_by_hand(key_of(secret), at)
    assert f'<p class="code-display" id="app-code">{code[:3]} {code[3:]}</p>' in html
    assert "Valid until 09:30:30 UTC (20 more seconds)." in html
    assert f'<p class="console-word-big" id="phrase">{PHRASE}</p>' in html
    assert "Never ask them to read a code to you." in html
    shown = _events(agents, events.REVEAL_APP_CODE)
    assert len(shown) == 1 and shown[0].data["agent_id"] == "a-001"
    assert code not in repr(shown) and PHRASE not in repr(_events(agents, events.REVEAL_PHRASE))
    # Nothing keeps it: the call page again shows no code and no phrase.
    assert code not in page(agents.client, ticket_id).replace(" ", "")
    assert PHRASE not in page(agents.client, ticket_id)


def test_a_code_about_to_change_shows_the_next_one_in_three_languages(agents: Web) -> None:
    secret = _enrolled(agents)
    sign_in(agents.client)
    ticket_id = issue(agents.client, customer=REF)
    with agents.app.app_context():
        services().issuer.connected(ticket_id)
    agents.clock.advance(seconds=27)  # 3 s left in the step
    at = int(agents.clock.now().timestamp())
    following = totp_by_hand(key_of(secret), at + 3)
    for lang, says in (("en", "The app code changes in 3 seconds. Read the next one:"),
                       ("zh-Hant", "App 動態碼再 3 秒就會換新。請唸下一個："),
                       ("zh-Hans", "App 动态码再 3 秒就会换新。请念下一个：")):
        html = _reveal(agents, ticket_id, lang).get_data(as_text=True)
        assert says in html
        assert f'id="app-code">{following[:3]} {following[3:]}</p>' in html
        assert "09:31:00" in html  # until when the next code is valid


def test_reveals_are_capped_and_say_so(agents: Web) -> None:
    _enrolled(agents)
    sign_in(agents.client)
    ticket_id = issue(agents.client, customer=REF)
    with agents.app.app_context():
        services().issuer.connected(ticket_id)
    for _ in range(3):  # reveals_per_customer_hour
        assert _reveal(agents, ticket_id).status_code == 200
    response = _reveal(agents, ticket_id, "zh-Hant")
    assert response.status_code == 409
    assert "這位顧客的 App 動態碼和來電暗語在過去一小時內顯示次數已達上限" \
        in response.get_data(as_text=True)
    assert len(_events(agents, events.REVEAL_CAPPED)) == 1


def test_a_call_without_enrolled_proofs_has_no_reveal_button(agents: Web) -> None:
    sign_in(agents.client)
    ticket_id = issue(agents.client, customer="C-plain")
    with agents.app.app_context():
        services().issuer.connected(ticket_id)
    html = page(agents.client, ticket_id)
    assert 'id="reveal-form"' not in html and status(agents.client, ticket_id)["reveal"] is None
    # Someone else's call cannot be revealed from this console.
    agents.client.post("/console/sign-out", data={"csrf_token": csrf(agents.client, "/console/")})
    sign_in(agents.client, "a-002")
    assert _reveal(agents, ticket_id).status_code == 404


# --- 14. the script line ---------------------------------------------------------------------

@pytest.mark.parametrize(("lang", "says"), [
    ("en", "Say: “Please open your browser and type shop.example/call yourself. "
           "I will not send you a link.”"),
    ("zh-Hant", "請說：「請您自己打開瀏覽器，輸入 shop.example/call。我不會傳連結給您。」"),
    ("zh-Hans", "请说：“请您自己打开浏览器，输入 shop.example/call。我不会发链接给您。”"),
])
def test_the_script_line_sends_the_customer_to_the_check_page_without_a_link(
        agents: Web, lang: str, says: str) -> None:
    sign_in(agents.client)
    html = agents.client.get(f"/console/?lang={lang}").get_data(as_text=True)
    assert says in html
    ticket_id = issue(agents.client)
    assert says in agents.client.get(f"/console/tickets/{ticket_id}?lang={lang}").get_data(
        as_text=True)


# --- 3. names per language on the console ---------------------------------------------------

def test_the_console_names_the_company_and_the_agent_in_its_language(
        agents: Web, make_app: Any) -> None:
    config = agents.path / "config.toml"
    config.write_text(config.read_text().replace(
        'hotline = "165"', 'hotline = "165"\nname_zh_hant = "範例商店"\nname_zh_hans = "范例商店"'))
    with agents.app.app_context():
        services().admin.set_agent("a-001", names={"zh-Hant": "林美玲", "zh-Hans": ""})
    app = make_app()
    client = app.test_client()
    sign_in(client)
    hant = client.get("/console/?lang=zh-Hant").get_data(as_text=True)
    assert "範例商店 · 客服主控台" in hant and "已登入：林美玲（a-001）" in hant
    hans = client.get("/console/?lang=zh-Hans").get_data(as_text=True)
    assert "范例商店 · 客服控制台" in hans and "Mei Lin（a-001）" in hans  # no zh-Hans name
    english = client.get("/console/?lang=en").get_data(as_text=True)
    assert "Example Shop · Agent console" in english and "Signed in as Mei Lin (a-001)" in english
