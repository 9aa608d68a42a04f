"""The agent console through the Flask test client (issue #3, "The agent console")."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from callproof import WORDS
from callproof.protocol import events, states
from callproof.sign_ins import SignIn
from callproof.store.events import read_events
from verifier_app import services

from .conftest import Web

PASSWORD = "correct horse battery staple"
WRONG_PASSWORD = "not the right password"
PHONE = "+886912345678"
STATUS = "/console/tickets/{}/status.json"


@pytest.fixture
def agents(web: Web) -> Web:
    """a-001 and a-002 with console passwords; a-003 with a password but disabled."""
    with web.app.app_context():
        for agent_id in ("a-001", "a-002", "a-003"):
            services().passwords.set(agent_id, PASSWORD)
        services().admin.set_agent_enabled("a-003", False)
    return web


def csrf(client: FlaskClient, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def sign_in(client: FlaskClient, agent_id: str = "a-001", password: str = PASSWORD,
            **environ: str) -> Any:
    token = csrf(client, "/console/sign-in")
    return client.post("/console/sign-in", environ_base=environ,
                       data={"csrf_token": token, "agent_id": agent_id, "password": password})


def signed_in(client: FlaskClient) -> bool:
    response = client.get("/console/")
    return response.status_code == 200


def issue(client: FlaskClient, reason: str = "order_delivery", phone: str = PHONE,
          **extra: str) -> str:
    token = csrf(client, "/console/")
    response = client.post("/console/tickets", data={"csrf_token": token, "reason": reason,
                                                     "phone": phone, **extra})
    assert response.status_code == 303, response.get_data(as_text=True)
    match = re.fullmatch(r"/console/tickets/([^/?]+)", response.location)
    assert match, response.location
    return match.group(1)


def page(client: FlaskClient, ticket_id: str) -> str:
    response = client.get(f"/console/tickets/{ticket_id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def status(client: FlaskClient, ticket_id: str, lang: str = "en") -> dict[str, Any]:
    response = client.get(STATUS.format(ticket_id), query_string={"lang": lang})
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    data: dict[str, Any] = response.get_json()
    return data


def code_on(html: str) -> str:
    match = re.search(r'<p class="code-display">(\d{3} \d{3} \d{3})</p>', html)
    assert match, html
    return match.group(1)


def code_shown(html: str) -> bool:
    return 'id="code-block" class="console-code">' in html


class Customer:
    """The customer's browser on the public check page."""

    def __init__(self, web: Web) -> None:
        self.client = web.app.test_client()

    def post(self, path: str, **data: str) -> str:
        token = csrf(self.client, "/")
        response = self.client.post(path, data={"csrf_token": token, **data},
                                    follow_redirects=True)  # each check step answers 303 (PRG)
        return response.get_data(as_text=True)

    def type_code(self, code: str) -> str:
        return self.post("/verify", code=code)

    def answer(self, ticket_id: str, answer: str) -> str:
        return self.post("/verify/number", t=ticket_id, answer=answer)

    def tap(self, ticket_id: str, word: str) -> str:
        return self.post("/verify/word", t=ticket_id, word=word)


def ticket_events(web: Web, type_: str) -> int:
    with web.app.app_context():
        d = services().deployment
        with d.store.read() as conn:
            return sum(1 for e in read_events(conn, d.issuer_id) if e.type == type_)


# --- sign-in ---------------------------------------------------------------------------------

def test_signed_out_pages_lead_to_the_sign_in(agents: Web) -> None:
    response = agents.client.get("/console/")
    assert response.status_code == 303
    assert response.location == "/console/sign-in"
    html = agents.client.get("/console/sign-in").get_data(as_text=True)
    assert '<label for="agent_id">Agent id</label>' in html
    assert '<label for="password">Password</label>' in html
    assert 'autocomplete="current-password"' in html
    assert agents.client.get(STATUS.format("x")).status_code == 401
    assert agents.client.get("/console/tickets/x").status_code == 303


def test_sign_in_and_the_session_cookie(agents: Web) -> None:
    response = sign_in(agents.client)
    assert response.status_code == 303
    assert response.location == "/console/"
    cookie = response.headers["Set-Cookie"]
    assert "cp_session=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    html = agents.client.get("/console/").get_data(as_text=True)
    assert "Signed in as Mei Lin (a-001)" in html
    assert "<h1>Start a call</h1>" in html
    # Signed in already: the sign-in page goes to the console.
    assert agents.client.get("/console/sign-in").location == "/console/"


def test_sign_in_starts_a_fresh_session(agents: Web) -> None:
    with agents.client.session_transaction() as sess:
        sess["planted"] = "by someone else"
        sess["calls"] = [["t-planted", "111 111 111", "order_delivery"]]
    sign_in(agents.client)
    with agents.client.session_transaction() as sess:
        live = _sign_in_of(agents, sess)
        assert live is not None and live.user_id == "a-001" and live.data is None
        assert "planted" not in sess and "calls" not in sess


def _sign_in_of(web: Web, sess: Any) -> SignIn | None:
    """The server-side sign-in the session cookie's token names (the cookie holds nothing else
    of it: hardening item 6)."""
    with web.app.app_context():
        return services().sign_ins.check("agent", sess.get("sign_in"))


def test_the_cookie_holds_no_agent_id_and_no_call_code(agents: Web) -> None:
    sign_in(agents.client)
    code = code_on(page(agents.client, issue(agents.client)))
    with agents.client.session_transaction() as sess:
        assert set(sess) <= {"sign_in", "csrf_token", "_fresh"}
        kept = str(dict(sess))
        assert code.replace(" ", "") not in kept.replace(" ", "") and "a-001" not in kept


def test_sign_out_password_change_and_disable_end_a_copied_cookie(agents: Web) -> None:
    """Hardening item 6: a cookie copied before sign-out (or before a new password, or before
    ``agents disable``) no longer opens the console, on its very next request."""
    from callproof import Admin
    from callproof.agent_auth import AgentPasswords

    for end in ("sign_out", "password", "disable"):
        sign_in(agents.client)
        with agents.client.session_transaction() as sess:
            copied = dict(sess)
        if end == "sign_out":
            agents.client.post("/console/sign-out",
                               data={"csrf_token": csrf(agents.client, "/console/")})
        with agents.app.app_context():
            dep = services().deployment
            if end == "password":
                AgentPasswords(dep).set("a-001", PASSWORD)
            elif end == "disable":
                Admin(dep).set_agent_enabled("a-001", False)
        thief = agents.app.test_client()
        with thief.session_transaction() as sess:
            sess.update(copied)
        response = thief.get("/console/")
        assert response.status_code in (302, 303) and "/console/sign-in" in response.location, end
        if end == "disable":
            with agents.app.app_context():
                Admin(services().deployment).set_agent_enabled("a-001", True)


@pytest.mark.parametrize(("agent_id", "password"), [
    ("a-001", WRONG_PASSWORD),      # wrong password
    ("a-999", PASSWORD),            # unknown agent
    ("a-003", PASSWORD),            # disabled agent, right password
    ("a-002", ""),                  # no password
    ("", PASSWORD),                 # no agent id
    ("a-001", PASSWORD + "x"),      # close is not enough
])
def test_failed_sign_in(agents: Web, agent_id: str, password: str) -> None:
    response = sign_in(agents.client, agent_id, password)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'class="error-summary"' in html
    assert "The agent id or the password is not right." in html or \
        "Type your agent id and your password." in html
    assert PASSWORD not in html  # the password is never echoed
    assert not signed_in(agents.client)


def test_an_agent_without_a_password_cannot_sign_in(web: Web) -> None:
    assert sign_in(web.client, "a-001", PASSWORD).status_code == 400


def test_sign_in_needs_the_csrf_token(agents: Web) -> None:
    response = agents.client.post("/console/sign-in",
                                  data={"agent_id": "a-001", "password": PASSWORD})
    assert response.status_code == 400
    assert "This page was open too long. Sign in again." in response.get_data(as_text=True)
    assert not signed_in(agents.client)


def test_console_forms_need_the_csrf_token(agents: Web) -> None:
    sign_in(agents.client)
    ticket_id = issue(agents.client)
    before = ticket_events(agents, events.TICKET_ISSUED)
    response = agents.client.post("/console/tickets", data={"reason": "order_delivery"})
    assert response.status_code == 400
    assert "This page was open too long" in response.get_data(as_text=True)
    assert ticket_events(agents, events.TICKET_ISSUED) == before
    assert agents.client.post(f"/console/tickets/{ticket_id}/close").status_code == 400
    assert status(agents.client, ticket_id)["state"] == states.ISSUED
    assert agents.client.post("/console/sign-out").status_code == 400
    assert signed_in(agents.client)


def test_failed_sign_ins_are_limited_per_client_and_agent(agents: Web) -> None:
    for _ in range(10):
        assert sign_in(agents.client, "a-001", WRONG_PASSWORD).status_code == 400
    response = sign_in(agents.client, "a-001", PASSWORD)  # even the right password now waits
    assert response.status_code == 429
    html = response.get_data(as_text=True)
    assert "Too many failed sign-ins" in html
    assert "We cannot confirm this call" not in html  # not the customer's failure page
    assert not signed_in(agents.client)
    # Another agent behind the same address (a call center's NAT) still signs in ...
    other = agents.app.test_client()
    assert sign_in(other, "a-002", PASSWORD).status_code == 303
    # ... but the same agent from another address waits too: the account has its own limit,
    # whatever the address (guesses spread over many addresses; issue 13 item 5).
    elsewhere = agents.app.test_client()
    assert sign_in(elsewhere, "a-001", PASSWORD, REMOTE_ADDR="198.51.100.7").status_code == 429


def _limits(web: Web, **values: int) -> None:
    """Set config.toml's [limits] for this app, as an operator would (``sign_in_*``)."""
    from dataclasses import replace

    with web.app.app_context():
        dep = services().deployment
        dep.config = replace(dep.config, limits=replace(dep.config.limits, **values))


def test_failed_sign_ins_are_limited_per_client(agents: Web) -> None:
    _limits(agents, sign_in_failures_per_address=3)
    for agent_id in ("a-001", "a-002", "a-999"):
        assert sign_in(agents.client, agent_id, WRONG_PASSWORD).status_code == 400
    assert sign_in(agents.client, "a-002", PASSWORD).status_code == 429
    other = agents.app.test_client()
    assert sign_in(other, "a-002", PASSWORD, REMOTE_ADDR="198.51.100.7").status_code == 303


def test_successful_sign_ins_are_not_limited(agents: Web) -> None:
    _limits(agents, sign_in_failures_per_address_and_account=2, sign_in_failures_per_account=2)
    for _ in range(4):
        assert sign_in(agents.app.test_client()).status_code == 303


def test_sign_out(agents: Web) -> None:
    sign_in(agents.client)
    ticket_id = issue(agents.client)
    token = csrf(agents.client, "/console/")
    response = agents.client.post("/console/sign-out", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.location == "/console/sign-in?signed_out=1"
    assert "You are signed out." in agents.client.get(response.location).get_data(as_text=True)
    assert not signed_in(agents.client)
    assert agents.client.get(f"/console/tickets/{ticket_id}").status_code == 303
    assert agents.client.get(STATUS.format(ticket_id)).status_code == 401
    with agents.client.session_transaction() as sess:
        assert "agent_id" not in sess and "calls" not in sess


def test_a_disabled_agent_is_signed_out(agents: Web) -> None:
    sign_in(agents.client)
    with agents.app.app_context():
        services().admin.set_agent_enabled("a-001", False)
    assert not signed_in(agents.client)


def test_a_sign_in_lasts_a_shift(agents: Web) -> None:
    sign_in(agents.client)
    agents.clock.advance(seconds=11 * 3600)
    assert signed_in(agents.client)
    agents.clock.advance(seconds=3600 + 1)
    assert not signed_in(agents.client)


# --- issuing ---------------------------------------------------------------------------------

def test_the_console_home(agents: Web) -> None:
    sign_in(agents.client)
    html = agents.client.get("/console/").get_data(as_text=True)
    assert '<label for="reason">Reason for the call</label>' in html
    assert '<option value="order_delivery">A question about the delivery of your order</option>' \
        in html
    assert '<label for="phone">Number dialled (optional)</label>' in html
    assert "the dialer fills this in" in html
    assert 'name="agent_id"' not in html  # the agent is who signed in, never chosen
    zh = agents.client.get("/console/?lang=zh-Hant").get_data(as_text=True)
    assert '<html lang="zh-Hant">' in zh
    assert "關於您訂單的配送" in zh


def test_issue_from_the_console(agents: Web) -> None:
    sign_in(agents.client)
    # A field naming another agent is ignored: the ticket is the signed-in agent's.
    ticket_id = issue(agents.client, agent_id="a-002")
    html = page(agents.client, ticket_id)
    assert re.fullmatch(r"\d{3} \d{3} \d{3}", code_on(html))
    assert code_shown(html)
    assert "Reason: A question about the delivery of your order" in html
    assert "Read the call code to the customer." in html
    assert '<script src="/static/console.js" defer></script>' in html
    with agents.app.app_context():
        st = services().issuer.status(ticket_id)
    assert st.agent_id == "a-001" and st.has_number and st.state == states.ISSUED
    # The call is listed on the home page.
    home = agents.client.get("/console/").get_data(as_text=True)
    assert f'href="/console/tickets/{ticket_id}' in home


def test_issue_without_a_number(agents: Web) -> None:
    sign_in(agents.client)
    ticket_id = issue(agents.client, phone="")
    with agents.app.app_context():
        assert not services().issuer.status(ticket_id).has_number


@pytest.mark.parametrize(("reason", "phone", "message"), [
    ("", PHONE, "Choose the reason for the call."),
    ("no_such_reason", PHONE, "Choose the reason for the call."),
    ("order_delivery", "0912 345 678", "Type the number in international form"),
    ("order_delivery", "+1 call me", "Type the number in international form"),
    ("", "12", "Type the number in international form"),  # both errors at once
])
def test_issue_errors(agents: Web, reason: str, phone: str, message: str) -> None:
    sign_in(agents.client)
    token = csrf(agents.client, "/console/")
    response = agents.client.post("/console/tickets", data={"csrf_token": token,
                                                            "reason": reason, "phone": phone})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html and 'class="error-summary"' in html and 'aria-invalid="true"' in html
    if not reason:
        assert "Choose the reason for the call." in html  # every error at once
    assert ticket_events(agents, events.TICKET_ISSUED) == 0


def test_issue_needs_sign_in(agents: Web) -> None:
    token = csrf(agents.client, "/console/sign-in")
    response = agents.client.post("/console/tickets",
                                  data={"csrf_token": token, "reason": "order_delivery"})
    assert response.status_code == 303 and response.location == "/console/sign-in"
    assert ticket_events(agents, events.TICKET_ISSUED) == 0


def test_another_agent_cannot_see_the_call(agents: Web) -> None:
    sign_in(agents.client)
    ticket_id = issue(agents.client)
    other = agents.app.test_client()
    sign_in(other, "a-002")
    assert other.get(f"/console/tickets/{ticket_id}").status_code == 404
    assert other.get(STATUS.format(ticket_id)).status_code == 404
    token = csrf(other, "/console/")
    assert other.post(f"/console/tickets/{ticket_id}/close",
                      data={"csrf_token": token}).status_code == 404
    assert status(agents.client, ticket_id)["state"] == states.ISSUED
    assert other.get("/console/tickets/no-such-ticket").status_code == 404
    assert other.get("/console/tickets/" + "x" * 200).status_code == 404


def test_the_code_shows_only_where_the_call_was_started(agents: Web) -> None:
    sign_in(agents.client)
    ticket_id = issue(agents.client)
    second_browser = agents.app.test_client()
    sign_in(second_browser)
    html = page(second_browser, ticket_id)
    assert 'class="code-display"' not in html
    assert "The call code shows only in the browser where the call was started." in html


# --- the call as the console sees it ----------------------------------------------------------

def test_a_confirmed_call(agents: Web) -> None:
    sign_in(agents.client)
    ticket_id = issue(agents.client)
    html = page(agents.client, ticket_id)
    code = code_on(html)
    s = status(agents.client, ticket_id)
    assert s["state"] == states.ISSUED and s["show_code"] and not s["final"]
    assert s["check_word"] is None and s["alerts"] == []
    assert "code" not in s  # the code is never in the polled JSON

    customer = Customer(agents)
    assert "end in 5678" in customer.type_code(code)
    html = page(agents.client, ticket_id)
    assert "The customer has typed the code." in html
    assert not code_shown(html)  # typed: no reason to read it again
    assert 'id="check-word" class="console-word" hidden' in html
    s = status(agents.client, ticket_id)
    assert s["state"] == states.CLAIMED and not s["show_code"] and s["check_word"] is None

    customer.answer(ticket_id, "yes")
    with agents.app.app_context():
        word = services().issuer.status(ticket_id).check_word
    assert word is not None
    html = page(agents.client, ticket_id)
    assert "Say the check word:" in html
    assert f'<span id="word-text" lang="en">{word.en}</span>' in html
    assert word.emoji in html
    assert f"{word.zh_hant} (繁體中文)" in html
    s = status(agents.client, ticket_id)
    assert s["state"] == states.NUMBER_CONFIRMED
    assert s["check_word"]["id"] == word.id and s["check_word"]["text"] == word.en
    assert s["message"] == "The customer has confirmed the phone number."
    # A console in Chinese still shows the word as the customer sees it: their page is English.
    zh = status(agents.client, ticket_id, lang="zh-Hans")
    assert zh["check_word"]["text"] == word.en
    assert zh["check_word"]["language"] == "顾客的页面语言是English。"

    assert "This is Example Shop." in customer.tap(ticket_id, word.id)
    html = page(agents.client, ticket_id)
    assert "The customer confirmed this call." in html
    s = status(agents.client, ticket_id)
    assert s["state"] == states.VERIFIED and s["check_word"] is None and not s["final"]

    token = csrf(agents.client, f"/console/tickets/{ticket_id}")
    response = agents.client.post(f"/console/tickets/{ticket_id}/close",
                                  data={"csrf_token": token})
    assert response.status_code == 303
    assert response.location == f"/console/tickets/{ticket_id}"
    html = page(agents.client, ticket_id)
    assert "This call is closed." in html and 'id="close-button"' not in html
    s = status(agents.client, ticket_id)
    assert s["state"] == states.CLOSED and s["final"] and not s["can_close"]
    with agents.client.session_transaction() as sess:
        live = _sign_in_of(agents, sess)
        assert live is not None and live.data == []  # the code is dropped once the call is closed


def test_a_call_without_a_number_goes_straight_to_the_word(agents: Web) -> None:
    sign_in(agents.client)
    ticket_id = issue(agents.client, phone="")
    customer = Customer(agents)
    customer.type_code(code_on(page(agents.client, ticket_id)))
    s = status(agents.client, ticket_id)
    assert s["state"] == states.CLAIMED and s["check_word"] is not None
    assert "Say the check word:" in page(agents.client, ticket_id)
    assert "This is Example Shop." in customer.tap(ticket_id, s["check_word"]["id"])
    assert status(agents.client, ticket_id)["state"] == states.VERIFIED


def _wrong_word(agents: Web, ticket_id: str, customer: Customer) -> None:
    customer.answer(ticket_id, "yes")
    right = status(agents.client, ticket_id)["check_word"]["id"]
    wrong = next(w for w in WORDS if w != right)
    customer.tap(ticket_id, wrong)


def _second_device(agents: Web, ticket_id: str, customer: Customer) -> None:
    code = code_on(page(agents.client, ticket_id))
    assert "We cannot confirm this call." in Customer(agents).type_code(code)


@pytest.mark.parametrize(("act", "alert_type", "text"), [
    (lambda agents, t, c: c.answer(t, "no"), "number_denied",
     "The customer said the phone is not theirs."),
    (_wrong_word, "wrong_word", "The customer tapped a different word."),
    (_second_device, "claimed_elsewhere", "The code was entered on a second device."),
])
def test_a_failed_call_tells_the_agent_why(agents: Web, act: Any, alert_type: str,
                                           text: str) -> None:
    sign_in(agents.client)
    ticket_id = issue(agents.client)
    customer = Customer(agents)
    customer.type_code(code_on(page(agents.client, ticket_id)))
    act(agents, ticket_id, customer)
    s = status(agents.client, ticket_id)
    assert s["state"] == states.FAILED and s["final"] and s["can_close"]
    assert s["check_word"] is None
    assert [(a["type"], a["text"]) for a in s["alerts"]] == [(alert_type, text)]
    html = page(agents.client, ticket_id)
    assert "The check failed." in html
    assert f"<li>{text}</li>" in html
    assert 'id="alerts" class="console-alerts">' in html  # shown
    assert 'data-final="true"' in html  # console.js does not poll a call that is over
    # The agent can still record the hang-up; the failure stays.
    token = csrf(agents.client, f"/console/tickets/{ticket_id}")
    agents.client.post(f"/console/tickets/{ticket_id}/close", data={"csrf_token": token})
    assert status(agents.client, ticket_id)["state"] == states.FAILED


def test_an_expired_call(agents: Web) -> None:
    sign_in(agents.client)
    ticket_id = issue(agents.client)
    agents.clock.advance(seconds=16 * 60)
    s = status(agents.client, ticket_id)
    assert s["state"] == states.EXPIRED and s["final"] and not s["show_code"]
    assert "This call code has expired." in page(agents.client, ticket_id)


def test_a_revoked_call(agents: Web) -> None:
    sign_in(agents.client)
    ticket_id = issue(agents.client)
    with agents.app.app_context():
        services().issuer.revoke_ticket(ticket_id)
    assert status(agents.client, ticket_id)["state"] == states.REVOKED
    assert "This call code was withdrawn." in page(agents.client, ticket_id)


def test_closing_twice_is_harmless(agents: Web) -> None:
    sign_in(agents.client)
    ticket_id = issue(agents.client)
    for _ in range(2):
        token = csrf(agents.client, f"/console/tickets/{ticket_id}")
        response = agents.client.post(f"/console/tickets/{ticket_id}/close",
                                      data={"csrf_token": token, "lang": "zh-Hant"})
        assert response.status_code == 303
        assert response.location == f"/console/tickets/{ticket_id}?lang=zh-Hant"
    assert status(agents.client, ticket_id)["state"] == states.CLOSED


def test_console_pages_keep_the_security_headers(agents: Web) -> None:
    sign_in(agents.client)
    ticket_id = issue(agents.client)
    for path in ("/console/sign-in", "/console/", f"/console/tickets/{ticket_id}",
                 STATUS.format(ticket_id)):
        response = agents.client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert response.headers["Cache-Control"] == "no-store"
    html = page(agents.client, ticket_id)
    assert re.search(r"<script>", html) is None  # no inline script
    script = agents.client.get("/static/console.js")
    assert script.status_code == 200 and b"status" in script.data
    script.close()


def test_the_console_says_when_a_wave_of_wrong_codes_is_on(agents: Web) -> None:
    """Hardening item 1: agents see that an attack is on (a tripped budget), and what to tell a
    customer whose check was refused."""
    from callproof import CheckFailed, new_client_token

    sign_in(agents.client)
    assert "A wave of wrong call codes" not in agents.client.get("/console/").get_data(
        as_text=True)
    with agents.app.app_context():
        flow = services().flow
        budget = services().deployment.config.limits.global_failure_budget
        for i in range(budget + 1):
            with pytest.raises(CheckFailed):
                flow.lookup("000000000", new_client_token(),
                            client_address=f"10.{i % 3}.{i % 200}.1")
    html = agents.client.get("/console/").get_data(as_text=True)
    assert "A wave of wrong call codes is on until" in html
    assert "目前有大量錯誤的來電確認碼湧入" in agents.client.get("/console/?lang=zh-Hant").get_data(
        as_text=True)


def test_a_password_typed_in_the_id_box_never_reaches_the_event_record(agents: Web) -> None:
    """Hardening item 8: a failed sign-in is an event, with the agent's id only when it is one
    (what was typed in the id box may be a password, and the event record is kept for good)."""
    token = csrf(agents.client, "/console/sign-in")
    agents.client.post("/console/sign-in", data={"csrf_token": token,
                                                 "agent_id": "my secret Pa55word",
                                                 "password": "x" * 12})
    token = csrf(agents.client, "/console/sign-in")
    agents.client.post("/console/sign-in", data={"csrf_token": token, "agent_id": "a-001",
                                                 "password": WRONG_PASSWORD})
    with agents.app.app_context():
        dep = services().deployment
        with dep.store.read() as conn:
            failed = [e for e in read_events(conn, dep.issuer_id)
                      if e.type == events.SIGN_IN_FAILED]
    assert [e.data for e in failed] == [{"kind": "agent", "unknown_id": True},
                                        {"kind": "agent", "user_id": "a-001"}]
    assert "Pa55word" not in str([e.to_bytes() for e in failed])
