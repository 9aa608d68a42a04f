"""The fraud desk through the Flask test client (issue #6, "The fraud desk").

A generated scam wave goes through the real pages: customers answer "No" and tap a wrong word on
the check page, a relayed code is typed on a second device, made-up codes trip the failed-lookup
budget, an app phrase is revealed without a connected call, and customers report the same caller
number over days (one 8 and one 20 days ago). The desk's pages, alerts.json and the police
exports must count each in the right window — and never show who the customers are.
"""

from __future__ import annotations

import csv
import io
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine

from callproof import WORDS, FixedClock, init_data_dir
from callproof.webhook import sign
from verifier_app import create_app, services

from .conftest import Web

DESK_PASSWORD = "fraud team password 1"
AGENT_PASSWORD = "correct horse battery staple"
CUSTOMER_PHONE = "+886912345678"            # the customers' own phone (the ticket's number)
CUSTOMER_REF = "C-SECRET-4242"              # the company's customer reference
PHRASE = "blue heron at dawn"               # the customer's enrolled phrase
FREE_TEXT = "My name is Chen Mei-hua, ID A123456789"   # what a reporter typed anyway
SCAMMER = "+886223456789"                   # the number that called: reported over days
SCAMMER_TYPED = "02 2345 6789"              # as the customer typed it on the report form
OTHER_SCAMMER = "+886277778888"
MADE_UP = "000 000 000"                     # a well-formed code no ticket has
BUDGET = 5                                  # failed lookups per minute (config.toml)


@dataclass
class Wave:
    """What the generated scam wave left behind (to find on the desk, or never to find)."""

    tickets: dict[str, str]
    codes: list[str]
    handle: str


@pytest.fixture
def desk(tmp_path: Path, backend: str, clock: FixedClock) -> Iterator[Web]:
    """The app over a data dir started 21 days ago, with a small failed-lookup budget; desk
    users d-001 (enabled) and d-002 (disabled); agent a-001 with a console password."""
    yield from _desk(tmp_path, clock, zone="UTC")


@pytest.fixture
def taipei_desk(tmp_path: Path, backend: str, clock: FixedClock) -> Iterator[Web]:
    """The same desk with no time zone set: the company's country (TW) gives Asia/Taipei."""
    yield from _desk(tmp_path, clock, zone=None)


def _desk(tmp_path: Path, clock: FixedClock, zone: str | None) -> Iterator[Web]:
    start = clock.now()
    clock.set(start - timedelta(days=21))
    path = tmp_path / "data"
    init_data_dir(path, now=clock.now())
    config = path / "config.toml"
    text = config.read_text("utf-8")
    assert "global_failure_budget = 600" in text
    # The desk shows times in the company's zone; these tests read them in UTC (the zone's
    # own tests set Asia/Taipei, the country's default).
    config.write_text(text.replace("global_failure_budget = 600",
                                   f"global_failure_budget = {BUDGET}")
                      .replace('# time_zone = "Asia/Taipei"',
                               f'time_zone = "{zone}"' if zone else "#"), "utf-8")
    app = create_app({"DATA_DIR": str(path), "TESTING": True, "RATELIMIT_ENABLED": True})
    with app.app_context():
        s = services()
        s.deployment.clock = clock
        s.desk_users.add("d-001", "Lin Fraud Team", DESK_PASSWORD)
        s.desk_users.add("d-002", "Former Member", DESK_PASSWORD)
        s.desk_users.set_enabled("d-002", False)
        s.passwords.set("a-001", AGENT_PASSWORD)
    clock.set(start)
    yield Web(app, app.test_client(), clock, path)
    with app.app_context():
        services().deployment.store.close()


def csrf(client: FlaskClient, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def sign_in(client: FlaskClient, user_id: str = "d-001", password: str = DESK_PASSWORD,
            lang: str | None = None) -> Any:
    token = csrf(client, "/fraud/sign-in")
    data = {"csrf_token": token, "user_id": user_id, "password": password}
    if lang:
        data["lang"] = lang
    return client.post("/fraud/sign-in", data=data)


def html(client: FlaskClient, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, (path, response.status_code, response.location)
    return response.get_data(as_text=True)


class Customer:
    """One customer's browser on the public check page."""

    def __init__(self, web: Web) -> None:
        self.client = web.app.test_client()

    def post(self, path: str, **data: Any) -> str:
        token = csrf(self.client, "/")
        return self.client.post(path, data={"csrf_token": token, **data},
                                follow_redirects=True).get_data(as_text=True)  # PRG: 303s

    def type_code(self, code: str) -> str:
        return self.post("/verify", code=code)

    def report(self, number: str, *scripts: str, text: str = "") -> None:
        assert "Thank you" in self.post("/report", number=number, asked=list(scripts),
                                        text=text)


def issue(web: Web, *, customer_ref: str | None = None) -> tuple[str, str]:
    with web.app.app_context():
        call = services().issuer.issue(agent_id="a-001", reason="order_delivery",
                                       phone=CUSTOMER_PHONE, customer_ref=customer_ref)
    return call.ticket_id, call.code_display


def scam_wave(web: Web) -> Wave:
    """The wave, oldest first; ends 5 minutes after T0 (the clock's start)."""
    clock = web.clock
    t0 = clock.now()
    reporter = Customer(web)
    clock.set(t0 - timedelta(days=20))
    reporter.report(OTHER_SCAMMER, "transfer_or_loan")
    clock.set(t0 - timedelta(days=8))
    reporter.report(SCAMMER_TYPED, "refund")
    clock.set(t0 - timedelta(days=3))
    reporter.report(SCAMMER_TYPED, "card_or_bank", "refund", text=FREE_TEXT)
    clock.set(t0 - timedelta(hours=2))
    reporter.report(SCAMMER_TYPED, "screen_sharing")
    clock.advance(seconds=60)
    reporter.report(SCAMMER, "refund", "install_app")

    clock.set(t0)
    tickets: dict[str, str] = {}
    codes = []
    # Two customers answer "No": the phone in their hand is not the one the ticket names.
    for name in ("no-1", "no-2"):
        ticket_id, code = issue(web)
        customer = Customer(web)
        assert "5678" in customer.type_code(code)
        assert "We cannot confirm this call." in customer.post("/verify/number", t=ticket_id,
                                                               answer="no")
        tickets[name], codes = ticket_id, [*codes, code]
    # One taps a word that is not the one the agent says.
    ticket_id, code = issue(web)
    customer = Customer(web)
    customer.type_code(code)
    customer.post("/verify/number", t=ticket_id, answer="yes")
    with web.app.app_context():
        right = services().issuer.status(ticket_id).check_word
    assert right is not None
    wrong = next(w for w in WORDS if w != right.id)
    assert "We cannot confirm this call." in customer.post("/verify/word", t=ticket_id,
                                                           word=wrong)
    tickets["word"], codes = ticket_id, [*codes, code]
    # A relayed code: the customer has it, then a second device types it.
    ticket_id, code = issue(web)
    Customer(web).type_code(code)
    assert "We cannot confirm this call." in Customer(web).type_code(code)
    tickets["relay"], codes = ticket_id, [*codes, code]
    # The customer's phrase is revealed for a call the dialer never reported connected.
    with web.app.app_context():
        proofs = services().enrolled
        handle = proofs.open_enrollment(proofs.create_enrollment(CUSTOMER_REF).token)
        proofs.set_phrase(PHRASE, handle=handle)
    ticket_id, code = issue(web, customer_ref=CUSTOMER_REF)
    with web.app.app_context():
        services().enrolled.reveal(ticket_id, allow_unconnected=True)
    tickets["reveal"], codes = ticket_id, [*codes, code]
    # A minute later someone guesses codes: the 6th failure in a minute trips the budget.
    clock.advance(seconds=60)
    guesser = Customer(web)
    for _ in range(BUDGET + 1):
        assert "We cannot confirm this call." in guesser.type_code(MADE_UP)
    # A customer reports the call, without the number, and writes about themselves.
    reporter.report("", "verification_code", text=FREE_TEXT)
    clock.advance(seconds=240)
    return Wave(tickets, codes, handle)


def assert_nothing_of_customers(text: str, wave: Wave) -> None:
    for secret in (CUSTOMER_PHONE, CUSTOMER_PHONE[4:], "0912345678", "0912-345-678",
                   CUSTOMER_REF, PHRASE, FREE_TEXT, "Chen Mei-hua", "A123456789", wave.handle):
        assert secret not in text, secret
    for code in wave.codes:
        assert code not in text and code.replace(" ", "") not in text, code


def number_row(page: str, number: str) -> str:
    match = re.search(r'<th scope="row" class="desk-id">' + re.escape(number) +
                      r'</th>\s*<td class="num"[^>]*>(\d+)</td>', page)
    assert match, number
    return match.group(1)


def script_count(page: str, label: str) -> int:
    match = re.search(r'<th scope="row">' + re.escape(label) + r'</th><td class="num">(\d+)<',
                      page)
    assert match, label
    return int(match.group(1))


def dd(page: str, dd_id: str) -> str:
    match = re.search(rf'<dd id="{dd_id}">([^<]*)</dd>', page)
    assert match, dd_id
    return match.group(1)


# --- sign-in -----------------------------------------------------------------------------------

def test_the_desk_needs_a_sign_in(desk: Web) -> None:
    for path in ("/fraud/", "/fraud/reports?days=7", "/fraud/police?days=7",
                 "/fraud/police.csv?days=7"):
        response = desk.client.get(path)
        assert response.status_code == 303, path
        assert response.location == "/fraud/sign-in"
    response = desk.client.get("/fraud/alerts.json")
    assert response.status_code == 401
    assert response.get_json()["error"] == "signed_out"
    page = html(desk.client, "/fraud/sign-in")
    assert "<h1>Sign in</h1>" in page
    assert '<label for="user_id">User id</label>' in page
    assert 'autocomplete="current-password"' in page


def test_sign_in_and_out(desk: Web) -> None:
    response = sign_in(desk.client)
    assert response.status_code == 303 and response.location == "/fraud/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = html(desk.client, "/fraud/")
    assert "Signed in as Lin Fraud Team (d-001)" in page
    assert "<h1>Live alerts</h1>" in page
    assert desk.client.get("/fraud/sign-in").location == "/fraud/"
    token = csrf(desk.client, "/fraud/")
    response = desk.client.post("/fraud/sign-out", data={"csrf_token": token})
    assert response.status_code == 303 and response.location == "/fraud/sign-in?signed_out=1"
    assert "You are signed out." in html(desk.client, response.location)
    assert desk.client.get("/fraud/").status_code == 303


@pytest.mark.parametrize(("user_id", "password"), [
    ("d-001", "not the right password"),
    ("d-001", DESK_PASSWORD + "x"),
    ("d-999", DESK_PASSWORD),          # unknown
    ("d-002", DESK_PASSWORD),          # disabled, right password
    ("a-001", AGENT_PASSWORD),         # an agent's console sign-in is not a desk sign-in
    ("d-001", ""),
    ("", DESK_PASSWORD),
])
def test_failed_sign_in(desk: Web, user_id: str, password: str) -> None:
    response = sign_in(desk.client, user_id, password)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'class="error-summary"' in page
    assert "The user id or the password is not right." in page or \
        "Type your user id and your password." in page
    assert DESK_PASSWORD not in page and AGENT_PASSWORD not in page
    assert desk.client.get("/fraud/").status_code == 303


def test_an_agent_cannot_open_the_desk_nor_a_desk_user_the_console(desk: Web) -> None:
    agent = desk.app.test_client()
    token = csrf(agent, "/console/sign-in")
    response = agent.post("/console/sign-in", data={"csrf_token": token, "agent_id": "a-001",
                                                    "password": AGENT_PASSWORD})
    assert response.status_code == 303 and response.location == "/console/"
    assert agent.get("/console/").status_code == 200
    for path in ("/fraud/", "/fraud/reports", "/fraud/police", "/fraud/police.csv"):
        assert agent.get(path).location == "/fraud/sign-in", path
    assert agent.get("/fraud/alerts.json").status_code == 401

    sign_in(desk.client)
    assert desk.client.get("/fraud/").status_code == 200
    assert desk.client.get("/console/").location == "/console/sign-in"
    # Signing in to the desk ends a console sign-in in the same browser.
    sign_in(agent)
    assert agent.get("/fraud/").status_code == 200
    assert agent.get("/console/").location == "/console/sign-in"


def test_a_disabled_desk_user_is_signed_out_at_the_next_request(desk: Web) -> None:
    sign_in(desk.client)
    assert desk.client.get("/fraud/").status_code == 200
    with desk.app.app_context():
        services().desk_users.set_enabled("d-001", False)
    assert desk.client.get("/fraud/alerts.json").status_code == 401
    with desk.app.app_context():
        services().desk_users.set_enabled("d-001", True)
    assert desk.client.get("/fraud/").location == "/fraud/sign-in"  # the session was ended


def test_a_sign_in_lasts_a_shift(desk: Web) -> None:
    sign_in(desk.client)
    desk.clock.advance(seconds=11 * 3600)
    assert desk.client.get("/fraud/").status_code == 200
    desk.clock.advance(seconds=3601)
    assert desk.client.get("/fraud/").location == "/fraud/sign-in"


def test_desk_forms_need_the_csrf_token(desk: Web) -> None:
    response = desk.client.post("/fraud/sign-in",
                                data={"user_id": "d-001", "password": DESK_PASSWORD})
    assert response.status_code == 400
    assert "This page was open too long. Sign in again." in response.get_data(as_text=True)
    assert desk.client.get("/fraud/").status_code == 303
    sign_in(desk.client)
    response = desk.client.post("/fraud/sign-out")
    assert response.status_code == 400
    assert "This page was open too long" in response.get_data(as_text=True)
    assert desk.client.get("/fraud/").status_code == 200  # still signed in


def test_failed_sign_ins_are_limited_per_client_and_user(desk: Web) -> None:
    for _ in range(10):
        assert sign_in(desk.client, "d-001", "wrong password here").status_code == 400
    response = sign_in(desk.client, "d-001", DESK_PASSWORD)
    assert response.status_code == 429
    assert "Too many failed sign-ins." in response.get_data(as_text=True)
    # Another user id from the same address still gets in (one user's typos lock out no one).
    with desk.app.app_context():
        services().desk_users.add("d-003", "Another Member", DESK_PASSWORD)
    assert sign_in(desk.client, "d-003", DESK_PASSWORD).status_code == 303


# --- the scam wave on the desk -----------------------------------------------------------------

def test_the_scam_wave_on_the_live_desk(desk: Web) -> None:
    wave = scam_wave(desk)
    sign_in(desk.client)
    page = html(desk.client, "/fraud/")
    assert_nothing_of_customers(page, wave)
    rows = re.findall(r'<tr class="kind-([a-z_]+)" data-idx="(\d+)">', page)
    kinds = [k for k, _ in rows]
    # Newest first: the budget (last), the reveal, the relay, the wrong word, the two "No"s.
    assert kinds == ["budget_tripped", "reveal_unconnected", "claimed_elsewhere", "word_wrong",
                     "number_denied", "number_denied"]
    assert [int(i) for _, i in rows] == sorted((int(i) for _, i in rows), reverse=True)
    for text in ("A customer said “No”: the phone is not theirs",
                 "A customer tapped a wrong check word",
                 "A call code was typed on a second device",
                 "Too many failed lookups: lookups are paused",
                 "An app code or phrase was revealed without a connected call"):
        assert re.search(rf'<td class="desk-kind"><a href="/fraud/alerts/\d+\?lang=en">{text}'
                         r'</a></td>', page), text
    for name in ("no-1", "no-2", "word", "relay", "reveal"):
        assert wave.tickets[name] in page  # the ticket id, to look the call up
    assert re.search(r'<td class="desk-id"[^>]*>a-001</td>', page)
    assert "A question about the delivery of your order" in page  # the reason, in words
    assert f"{BUDGET + 1} failed lookups in one minute (the budget is {BUDGET})." in page
    assert "Lookups paused until 2026-11-23 09:36 UTC." in page
    assert "Shown anyway: allowed for a test." in page
    # Failed lookups per hour: the relay and the six guesses, all in the 09:00 hour.
    assert "7 failed lookups in the last 24 hours. The most in one hour: 7, in the hour from " \
        "2026-11-23 09:00 UTC." in page
    assert '<title>2026-11-23 09:00 UTC: 7</title>' in page
    assert page.count("<rect ") == 24
    assert re.search(r'<svg role="img" aria-labelledby="chart-title chart-desc"', page)
    assert '<td class="num">7</td>' in page  # the table alternative
    assert "Alerts sent to the webhook" not in page  # none configured
    response = desk.client.get("/fraud/")
    assert response.headers["Cache-Control"] == "no-store"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "<script>" not in page and "style=" not in page  # the CSP allows neither


def test_alerts_json_returns_only_newer_alerts(desk: Web) -> None:
    wave = scam_wave(desk)
    sign_in(desk.client)
    response = desk.client.get("/fraud/alerts.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    everything = response.get_json()
    assert_nothing_of_customers(response.get_data(as_text=True), wave)
    alerts = everything["alerts"]
    assert [a["kind"] for a in alerts][:2] == ["budget_tripped", "reveal_unconnected"]
    assert everything["last"] == alerts[0]["idx"]
    first = alerts[-1]
    assert first["kind_text"] == "A customer said “No”: the phone is not theirs"
    assert first["ticket_id"] == wave.tickets["no-1"] and first["agent_id"] == "a-001"
    assert first["at"] == "2026-11-23T09:30:00Z" and first["at_text"] == "2026-11-23 09:30 UTC"

    newer = desk.client.get(f"/fraud/alerts.json?after={alerts[2]['idx']}").get_json()
    assert [a["idx"] for a in newer["alerts"]] == [alerts[0]["idx"], alerts[1]["idx"]]
    assert newer["announcement"].startswith("2 new alerts. The newest: Too many failed lookups")
    none = desk.client.get(f"/fraud/alerts.json?after={alerts[0]['idx']}").get_json()
    assert none == {"alerts": [], "last": alerts[0]["idx"], "announcement": ""}

    # Once lookups open again, a customer answers "No": the next poll has exactly that alert.
    desk.clock.advance(seconds=120)
    ticket_id, code = issue(desk)
    customer = Customer(desk)
    customer.type_code(code)
    customer.post("/verify/number", t=ticket_id, answer="no")
    live = desk.client.get(f"/fraud/alerts.json?after={none['last']}").get_json()
    assert [(a["kind"], a["ticket_id"]) for a in live["alerts"]] == [("number_denied",
                                                                     ticket_id)]
    assert live["announcement"] == ("New alert: A customer said “No”: the phone is not theirs, "
                                    "2026-11-23 09:37 UTC.")
    zh = desk.client.get(f"/fraud/alerts.json?after={none['last']}&lang=zh-Hant").get_json()
    assert zh["alerts"][0]["kind_text"] == "顧客回答「不是」：手上的電話不是他的"
    for bad in ("x", "-1", "1.5", "9" * 30):
        assert desk.client.get(f"/fraud/alerts.json?after={bad}").status_code == 400


@pytest.mark.parametrize(("days", "total", "scammer", "others", "refund"), [
    (1, 3, "2", None, 1),
    (7, 4, "3", None, 2),
    (30, 6, "4", "1", 3),
])
def test_reports_by_number_and_script_in_each_window(
        desk: Web, days: int, total: int, scammer: str, others: str | None,
        refund: int) -> None:
    wave = scam_wave(desk)
    sign_in(desk.client)
    page = html(desk.client, f"/fraud/reports?days={days}")
    assert_nothing_of_customers(page, wave)
    assert dd(page, "total-reports") == str(total)
    assert number_row(page, SCAMMER) == scammer
    if others is None:
        assert OTHER_SCAMMER not in page
    else:
        assert number_row(page, OTHER_SCAMMER) == others
        assert page.index(SCAMMER) < page.index(OTHER_SCAMMER)  # most reports first
    assert script_count(page, "Refund or double charge") == refund
    assert script_count(page, "Verification code") == 1
    assert script_count(page, "Opening a link") == 0  # every script is listed
    assert script_count(page, "Transfer or loan") == (1 if days == 30 else 0)
    assert '<span aria-current="page">' in page
    assert f'href="/fraud/police?days={days}' in page
    assert f'href="/fraud/police.csv?days={days}"' in page


def test_the_reports_page_shows_first_and_last_report(desk: Web) -> None:
    scam_wave(desk)
    sign_in(desk.client)
    page = html(desk.client, "/fraud/reports?days=30")
    row = re.search(re.escape(SCAMMER) + r"</th>(.*?)</tr>", page, re.S)
    assert row
    assert "2026-11-15 09:30 UTC" in row.group(1)  # 8 days before T0
    assert "2026-11-23 07:31 UTC" in row.group(1)  # 2 hours before T0
    assert "Refund or double charge (3)" in row.group(1)
    assert html(desk.client, "/fraud/reports").count('<span aria-current="page">') == 1


@pytest.mark.parametrize("days", ["3", "0", "x", "7.0", "-7", "365"])
def test_a_window_the_desk_does_not_offer(desk: Web, days: str) -> None:
    sign_in(desk.client)
    for path in ("/fraud/reports", "/fraud/police", "/fraud/police.csv"):
        page = html(desk.client, f"{path}?days={days}", 400)
        assert "<h1>Choose 1, 7 or 30 days</h1>" in page
    page = html(desk.client, f"/fraud/reports?days={days}&lang=zh-Hans", 400)
    assert "<h1>请选择 1 天、7 天或 30 天</h1>" in page


def test_the_police_page(desk: Web) -> None:
    wave = scam_wave(desk)
    sign_in(desk.client)
    page = html(desk.client, "/fraud/police?days=7")
    assert_nothing_of_customers(page, wave)
    assert "<h1>Facts for a police report</h1>" in page
    assert "Example Shop (shop.example)" in page
    assert "2026-11-16 09:35 UTC</time> – <time" in page  # the window: 7 days to now
    assert dd(page, "police-total") == "4"
    assert dd(page, "police-lookups") == "7"
    assert number_row(page, SCAMMER) == "3"
    assert OTHER_SCAMMER not in page  # 20 days ago
    reports = re.search(r'<table class="desk-table[^"]*" id="police-reports">(.*?)</table>',
                        page, re.S)
    assert reports
    rows = re.findall(r"<tr><td>(.*?)</td></tr>", reports.group(1), re.S)
    assert len(rows) == 4
    assert "2026-11-20 09:30 UTC" in rows[0]
    assert rows[0].endswith((">Card or bank details, Refund or double charge",
                             ">Refund or double charge, Card or bank details"))
    assert "not given" in rows[3] and "Verification code" in rows[3]
    alerts = re.search(r'id="police-alerts">(.*?)</table>', page, re.S)
    assert alerts
    counts = dict(re.findall(r'<th scope="row">(.*?)</th><td class="num">(\d+)</td>',
                             alerts.group(1)))
    assert counts == {
        "A customer said “No”: the phone is not theirs": "2",
        "A customer tapped a wrong check word": "1",
        "A call code was typed on a second device": "1",
        "Too many failed lookups: lookups are paused": "1",
        "An app code or phrase was revealed without a connected call": "1",
        "A reveal was refused: the hourly limit was reached": "0",
        "A stored call record does not match its signature": "0",
    }
    assert "Generated by the Example Shop fraud desk at 2026-11-23 09:35 UTC." in page
    assert 'class="no-print"' in page  # the window switch and buttons are not printed
    assert desk.client.get("/fraud/police?days=7").headers["Cache-Control"] == "no-store"


def test_the_police_csv(desk: Web) -> None:
    wave = scam_wave(desk)
    sign_in(desk.client)
    response = desk.client.get("/fraud/police.csv?days=30")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == \
        'attachment; filename="scam-reports-shop.example-30d-20261123-0935.csv"'
    assert response.headers["Cache-Control"] == "no-store"
    text = response.get_data().decode("utf-8")
    assert_nothing_of_customers(text, wave)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["reported_at_utc", "caller_number", "scripts"]
    assert [[at, number, ";".join(sorted(scripts.split(";")))]
            for at, number, scripts in rows[1:]] == [
        ["2026-11-03T09:30:00Z", "'" + OTHER_SCAMMER, "transfer_or_loan"],
        ["2026-11-15T09:30:00Z", "'" + SCAMMER, "refund"],
        ["2026-11-20T09:30:00Z", "'" + SCAMMER, "card_or_bank;refund"],
        ["2026-11-23T07:30:00Z", "'" + SCAMMER, "screen_sharing"],
        ["2026-11-23T07:31:00Z", "'" + SCAMMER, "install_app;refund"],
        ["2026-11-23T09:31:00Z", "", "verification_code"],
    ]
    one_day = desk.client.get("/fraud/police.csv?days=1").get_data().decode("utf-8")
    assert len(list(csv.reader(io.StringIO(one_day)))) == 1 + 3


@pytest.mark.parametrize(("lang", "texts"), [
    ("zh-Hant", ["<h1>即時警示</h1>", "顧客回答「不是」：手上的電話不是他的", "每小時查詢失敗次數",
                 'lang="zh-Hant"']),
    ("zh-Hans", ["<h1>实时预警</h1>", "顾客回答“不是”：手上的电话不是他的", "每小时查询失败次数",
                 'lang="zh-Hans"']),
])
def test_the_desk_in_chinese(desk: Web, lang: str, texts: list[str]) -> None:
    wave = scam_wave(desk)
    response = sign_in(desk.client, lang=lang)
    assert response.location == f"/fraud/?lang={lang}"
    page = html(desk.client, response.location)
    for text in texts:
        assert text in page, text
    assert "Live alerts" not in page and "A customer said" not in page
    reports = html(desk.client, f"/fraud/reports?days=30&lang={lang}")
    assert ("<h1>詐騙通報</h1>" if lang == "zh-Hant" else "<h1>诈骗举报</h1>") in reports
    assert ("退款或重複扣款" if lang == "zh-Hant" else "退款或重复扣款") in reports
    police = html(desk.client, f"/fraud/police?days=30&lang={lang}")
    assert ("<h1>報案所需資料</h1>" if lang == "zh-Hant" else "<h1>报案所需材料</h1>") in police
    for page in (reports, police):
        assert_nothing_of_customers(page, wave)
        assert "Scam reports" not in page and "What the caller asked for" not in page
    sign_in_page = html(desk.app.test_client(), f"/fraud/sign-in?lang={lang}")
    assert ("使用者帳號" if lang == "zh-Hant" else "用户账号") in sign_in_page


def test_a_desk_page_that_does_not_exist(desk: Web) -> None:
    page = html(desk.client, "/fraud/nothing-here", 404)
    assert "<h1>Page not found</h1>" in page
    sign_in(desk.client)
    page = html(desk.client, "/fraud/nothing/1?lang=zh-Hant", 404)
    assert "<h1>找不到這個頁面</h1>" in page


def test_the_desk_when_the_store_is_down(desk: Web, tmp_path: Path) -> None:
    sign_in(desk.client)
    with desk.app.app_context():
        store = services().deployment.store
    good = store.engine
    # A database that cannot be opened: every read and write fails.
    store.engine = create_engine(f"sqlite:///{tmp_path}/missing/dir/db.sqlite")
    try:
        response = desk.client.get("/fraud/")
        assert response.status_code == 503
        assert "The fraud desk is not available" in response.get_data(as_text=True)
        response = desk.client.get("/fraud/alerts.json")
        assert response.status_code == 503
        assert response.get_json()["error"] == "unavailable"
    finally:
        store.engine.dispose()
        store.engine = good


# --- alerts pushed to the webhook ----------------------------------------------------------------

class Receiver:
    """A webhook receiver on loopback: records each POST, answers with ``status``."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.status = 204
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/callproof?token=t0ken"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def _says_no(web: Web) -> str:
    ticket_id, code = issue(web)
    customer = Customer(web)
    customer.type_code(code)
    customer.post("/verify/number", t=ticket_id, answer="no")
    return ticket_id


def _push(app: Flask) -> None:
    """What `callproof worker` does every second: push the desk's new alerts (nothing is pushed
    after requests any more)."""
    with app.app_context():
        services().webhook.push_due()


def test_alerts_are_pushed_to_the_webhook_by_the_worker(desk: Web) -> None:
    receiver = Receiver()
    with (desk.path / "config.toml").open("a", encoding="utf-8") as f:
        f.write(f'\n[alerts]\nwebhook_url = "{receiver.url}"\n')
    app = create_app({"DATA_DIR": str(desk.path), "TESTING": True})
    try:
        with app.app_context():
            services().deployment.clock = desk.clock
            secret = services().webhook.create_secret()
        assert secret
        hooked = Web(app, app.test_client(), desk.clock, desk.path)
        ticket_id = _says_no(hooked)
        assert receiver.got == []  # no request pushes anything ...
        _push(app)  # ... the worker does
        assert len(receiver.got) == 1
        headers, body = receiver.got[0]
        assert ticket_id.encode() in body and b'"kind":"number_denied"' in body
        assert CUSTOMER_PHONE.encode() not in body and CUSTOMER_PHONE[4:].encode() not in body
        assert headers["webhook-signature"] == sign(secret, headers["webhook-id"],
                                                    int(headers["webhook-timestamp"]), body)
        sign_in(hooked.client)
        page = html(hooked.client, "/fraud/")
        assert "Alerts sent to the webhook" in page
        assert "<dd>127.0.0.1</dd>" in page and "t0ken" not in page  # the host alone
        assert "<dt>Waiting to be sent</dt><dd>0</dd>" in page
        assert "2026-11-23 09:30 UTC</time></dd>" in page  # last delivered
        # The receiver fails: the desk shows the alert waiting for its retry.
        receiver.status = 500
        _says_no(hooked)
        _push(app)
        assert len(receiver.got) == 2
        page = html(hooked.client, "/fraud/")
        assert "<dt>Waiting to be sent</dt><dd>1</dd>" in page
    finally:
        receiver.close()
        with app.app_context():
            services().deployment.store.close()


def test_no_push_without_a_webhook(desk: Web) -> None:
    app = create_app({"DATA_DIR": str(desk.path), "TESTING": True})
    try:
        with app.app_context():
            services().deployment.clock = desk.clock
            assert not services().webhook.configured
        hooked = Web(app, app.test_client(), desk.clock, desk.path)
        _says_no(hooked)
        sign_in(hooked.client)
        assert "Alerts sent to the webhook" not in html(hooked.client, "/fraud/")
    finally:
        with app.app_context():
            services().deployment.store.close()


def test_a_copied_desk_cookie_dies_with_a_new_password(desk: Web) -> None:
    """Hardening item 6: the police CSV is not downloadable with a cookie copied before the
    desk user's password changed (the sign-in lives in the database, not in the cookie)."""
    sign_in(desk.client)
    assert desk.client.get("/fraud/police.csv?days=7").status_code == 200
    with desk.client.session_transaction() as sess:
        copied = dict(sess)
    with desk.app.app_context():
        services().desk_users.set_password("d-001", DESK_PASSWORD + " new")
    thief = desk.app.test_client()
    with thief.session_transaction() as sess:
        sess.update(copied)
    response = thief.get("/fraud/police.csv?days=7")
    assert response.status_code in (302, 303) and "/fraud/sign-in" in response.location


# --- issue 14: the company's time zone, an alert's story, acknowledge and assign, report text --

def logged(web: Web, *types: str) -> list[dict[str, Any]]:
    """The data of the logged events of these types, in the record's order."""
    from sqlalchemy import select

    from callproof.protocol.events import Event
    from callproof.store import schema
    from callproof.store.integrator import integrate_all

    with web.app.app_context():
        store = services().deployment.store
        integrate_all(store)
        with store.read() as conn:
            rows = conn.execute(select(schema.events.c.body).where(
                schema.events.c.type.in_(types)).order_by(schema.events.c.idx)).all()
    return [{"type": e.type, **e.data} for e in (Event.from_bytes(bytes(r.body)) for r in rows)]


def test_desk_times_are_in_the_companys_zone_and_the_csv_stays_utc(taipei_desk: Web) -> None:
    wave = scam_wave(taipei_desk)
    sign_in(taipei_desk.client)
    page = html(taipei_desk.client, "/fraud/")
    # 09:30 UTC is 17:30 in Taipei; the zone's abbreviation follows every time.
    assert "Lookups paused until 2026-11-23 17:36 CST." in page
    assert "in the hour from 2026-11-23 17:00 CST." in page
    assert "Times are in Asia/Taipei (UTC+08:00)." in page
    assert " UTC</time>" not in page
    police = html(taipei_desk.client, "/fraud/police?days=7")
    assert "2026-11-20 17:30 CST" in police
    assert "The CSV gives every time in UTC (ISO 8601)" in police
    csv_text = taipei_desk.client.get("/fraud/police.csv?days=7").get_data().decode()
    rows = list(csv.reader(io.StringIO(csv_text)))
    assert rows[0][0] == "reported_at_utc" and rows[1][0] == "2026-11-20T09:30:00Z"
    assert_nothing_of_customers(csv_text, wave)


def test_an_unknown_time_zone_is_refused_naming_the_setting(tmp_path: Path) -> None:
    from callproof import ConfigError
    from callproof.config import DataDir

    path = tmp_path / "data"
    init_data_dir(path)
    config = path / "config.toml"
    config.write_text(config.read_text("utf-8").replace(
        '# time_zone = "Asia/Taipei"', 'time_zone = "Mars/Olympus"'), "utf-8")
    with pytest.raises(ConfigError, match="time_zone 'Mars/Olympus'"):
        DataDir(path).load()


def _alert_link(page: str, kind: str) -> str:
    match = re.search(rf'<tr class="kind-{kind}" data-idx="(\d+)">.*?<a href="([^"]+)">',
                      page, re.S)
    assert match, kind
    return match.group(2).replace("&amp;", "&")


def test_an_alert_opens_to_its_calls_story_and_is_acknowledged_and_assigned(
        desk: Web) -> None:
    wave = scam_wave(desk)
    with desk.app.app_context():
        services().desk_users.add("d-003", "Wang Investigator", DESK_PASSWORD)
    sign_in(desk.client)
    home = html(desk.client, "/fraud/")
    link = _alert_link(home, "word_wrong")
    page = html(desk.client, link)
    assert_nothing_of_customers(page, wave)
    assert "<h1 class=\"kind-word_wrong\">A customer tapped a wrong check word</h1>" in page
    assert wave.tickets["word"] in page
    steps = re.findall(r'<li(?: class="desk-this" aria-current="step")?><time datetime="[^"]+">'
                       r'([^<]+)</time> <span>([^<]+)</span></li>', page)
    assert [text for _, text in steps] == [
        "Agent a-001 started the call. Reason: A question about the delivery of your order.",
        "The customer typed the call code on the check page.",
        "The customer said the phone number is theirs.",
        "The customer tapped a wrong check word.",
        "The check failed: a wrong check word.",
    ]
    assert all(at.endswith(" UTC") for at, _ in steps)
    assert '<li class="desk-this" aria-current="step">' in page  # the alert's own step
    assert "<dd id=\"alert-status\">New</dd>" in page
    idx = int(link.split("/")[3].split("?")[0])
    # Acknowledge: a 303 back to the page (Post/Redirect/Get), which says who did it.
    token = csrf(desk.client, link)
    done = desk.client.post(f"/fraud/alerts/{idx}/acknowledge",
                            data={"csrf_token": token, "lang": "en"})
    assert done.status_code == 303 and done.location.startswith(f"/fraud/alerts/{idx}?")
    page = html(desk.client, done.location)
    assert "You acknowledged this alert." in page
    assert "Acknowledged by d-001 at 2026-11-23 09:35 UTC." in page
    assert 'id="acknowledge"' not in page  # once is enough
    # Assign it to a colleague; a disabled user or a made-up id is refused, nothing changes.
    for bad in ("d-002", "nobody", ""):
        refused = desk.client.post(f"/fraud/alerts/{idx}/assign",
                                   data={"csrf_token": token, "assignee": bad})
        assert refused.status_code == 400
        assert "Nothing was changed." in refused.get_data(as_text=True)
    assigned = desk.client.post(f"/fraud/alerts/{idx}/assign",
                                data={"csrf_token": token, "assignee": "d-003"})
    assert assigned.status_code == 303
    page = html(desk.client, assigned.location)
    assert "Assigned to d-003 by d-001 at 2026-11-23 09:35 UTC." in page
    assert '<dd id="alert-status">Acknowledged by d-001; assigned to d-003</dd>' in page
    # The live desk and alerts.json show it too; the event record says who did what.
    home = html(desk.client, "/fraud/")
    assert "Acknowledged by d-001; assigned to d-003" in home
    assert logged(desk, "desk.alert_acknowledged", "desk.alert_assigned") == [
        {"type": "desk.alert_acknowledged", "alert": idx, "user_id": "d-001"},
        {"type": "desk.alert_assigned", "alert": idx, "user_id": "d-001",
         "assignee": "d-003"}]
    # Without a CSRF token, nothing.
    assert desk.client.post(f"/fraud/alerts/{idx}/acknowledge").status_code == 400
    # An alert that is not about one call (the budget) has no story; an unknown one is a 404.
    page = html(desk.client, _alert_link(home, "budget_tripped"))
    assert "This alert is not about one call" in page
    assert "<h1>Alert not found</h1>" in html(desk.client, "/fraud/alerts/999999", 404)
    assert desk.client.post("/fraud/alerts/999999/acknowledge",
                            data={"csrf_token": token}).status_code == 404


@pytest.mark.parametrize(("lang", "texts"), [
    ("zh-Hant", ["顧客在來電查證頁輸入了來電確認碼。", "顧客點了錯誤的確認詞。"]),
    ("zh-Hans", ["顾客在来电查证页输入了来电确认码。", "顾客点了错误的确认词。"]),
])
def test_an_alerts_story_in_chinese(desk: Web, lang: str, texts: list[str]) -> None:
    scam_wave(desk)
    sign_in(desk.client, lang=lang)
    home = html(desk.client, f"/fraud/?lang={lang}")
    page = html(desk.client, _alert_link(home, "word_wrong"))
    for text in texts:
        assert text in page
    assert "The customer" not in page and "Acknowledge<" not in page


def test_a_reports_page_shows_what_the_customer_wrote_until_it_is_removed(desk: Web) -> None:
    wave = scam_wave(desk)
    marked_up = '<script>alert("x")</script> he said he was from the bank & asked for my card'
    Customer(desk).report(OTHER_SCAMMER, "card_or_bank", text=marked_up)
    sign_in(desk.client)
    listing = html(desk.client, "/fraud/reports?days=30")
    assert_nothing_of_customers(listing, wave)  # the list says only whether there is text
    links = re.findall(r'<a href="(/fraud/reports/r_[^"?]+)\?lang=en"><time', listing)
    assert len(links) == 7
    pages = [html(desk.client, link) for link in links]
    written = [p for p in pages if 'id="report-text"' in p]
    assert len(written) == 3  # the marked-up one and FREE_TEXT twice
    newest = written[0]
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; he said he was from the bank " \
        "&amp; asked for my card" in newest
    assert "<script>alert" not in newest
    assert sum(FREE_TEXT in p for p in pages) == 2
    assert sum('id="report-text-none"' in p for p in pages) == 4
    # Never in the police facts or their CSV.
    for path in ("/fraud/police?days=30", "/fraud/police.csv?days=30"):
        text = desk.client.get(path).get_data(as_text=True)
        assert FREE_TEXT not in text and "from the bank" not in text
    # Housekeeping forgets the text after report_text_days (30): the page says so.
    desk.clock.advance(seconds=31 * 86_400)
    with desk.app.app_context():
        assert services().reports.purge_texts() == 3
    sign_in(desk.client)
    for link in links:
        page = html(desk.client, link)
        assert FREE_TEXT not in page and "from the bank" not in page
    assert "Removed after 30 days" in html(desk.client, links[0])
    assert "<h1>Report not found</h1>" in html(desk.client, "/fraud/reports/r_nope", 404)


def test_one_failed_lookup_reads_as_one(desk: Web) -> None:
    """The desk's summary of a day with one failed lookup says "1 failed lookup", not
    "1 failed lookups" (issue 14: counts read naturally)."""
    from callproof.fraud import HourCount
    from verifier_app.fraud import lookup_chart

    hour = desk.clock.now().replace(minute=0, second=0, microsecond=0)
    with desk.app.test_request_context("/fraud/?lang=en"):
        assert lookup_chart([HourCount(hour, 1)])["summary"].startswith(
            "1 failed lookup in the last 24 hours.")
        assert lookup_chart([HourCount(hour, 2)])["summary"].startswith(
            "2 failed lookups in the last 24 hours.")
    with desk.app.test_request_context("/fraud/?lang=zh-Hant"):
        assert lookup_chart([HourCount(hour, 1)])["summary"].startswith(
            "過去 24 小時共查詢失敗 1 次。")


@pytest.mark.parametrize(("lang", "said"), [
    ("en", "Acknowledged by d-001; assigned to d-003"),
    ("zh-Hant", "d-001 已確認收到；已指派給 d-003"),
    ("zh-Hans", "d-001 已确认收到；已指派给 d-003"),
])
def test_an_alerts_status_is_one_sentence_in_each_language(desk: Web, lang: str,
                                                            said: str) -> None:
    """Acknowledged and assigned reads as one sentence with the language's own stop (no ASCII
    "; " inside Chinese)."""
    from callproof.fraud import AlertWork
    from verifier_app.fraud import work_text

    with desk.app.test_request_context(f"/fraud/?lang={lang}"):
        assert work_text(AlertWork(acknowledged_by="d-001", assignee="d-003")) == said
