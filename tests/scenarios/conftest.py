"""The scam scenarios, played for real against a served instance on loopback.

Each scenario module starts the verifier app on 127.0.0.1 (a werkzeug server in a thread, the
embedded SQLite default) and plays its parts over HTTP, as the people would:

- ``Dialer``: the company's dialer, through the issuer API with a bearer key;
- ``Console``: an agent signed in to the agent console (cookies, CSRF, the call page);
- ``Customer``: a phone's browser on the public check page (cookies, CSRF, its own address);
- ``Desk``: the company's fraud team signed in to the fraud desk (live alerts, reports);
- the scammer is whichever of these he can get his hands on — a browser of his own, a leaked
  key, a relayed code.

The app trusts one proxy here, so each ``Customer`` can stand behind its own address
(``X-Forwarded-For``), as customers behind their own connections — or one carrier-grade NAT —
would. The deployment's clock is a ``FixedClock`` the scenario moves; Flask-Limiter's windows run
on real time.
"""

from __future__ import annotations

import html
import itertools
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask_babel import gettext

from callproof import FixedClock, init_data_dir
from callproof.protocol.codes import damm_digit
from callproof.protocol.events import Event
from callproof.store.events import read_events
from verifier_app import create_app, services

#: A weekday morning in the company's working hours (Asia/Taipei is UTC+8): 10:00 local.
OFFICE_HOURS = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
AGENT = "a-001"
AGENT_PASSWORD = "a long scenario password"
CUSTOMER_PHONE = "+886912345678"
_addresses = itertools.count(1)


def new_address() -> str:
    """A fresh client address (TEST-NET-3 and on), one per customer unless a test shares one."""
    n = next(_addresses)
    return f"203.0.{113 + n // 250}.{n % 250 + 1}"


@dataclass
class Page:
    """A page the customer's browser got back, read the way the customer reads it."""

    status: int
    text: str
    url: str

    @property
    def kind(self) -> str:
        """Which page this is: index, number, word, confirmed, failed or report_thanks."""
        if 'class="panel confirmed"' in self.text:
            return "confirmed"
        if 'class="panel warning"' in self.text:
            return "failed"
        if 'name="answer" value="yes"' in self.text:
            return "number"
        if 'class="button word"' in self.text:
            return "word"
        if 'name="code"' in self.text:
            return "index"
        return "other"

    @property
    def ticket(self) -> str:
        match = re.search(r'name="t" value="([^"]+)"', self.text)
        assert match, f"the {self.kind} page carries its ticket"
        return match.group(1)

    @property
    def choices(self) -> dict[str, str]:
        """The check-word buttons: the word as shown → its id."""
        found = re.findall(r'name="word" value="([^"]+)" class="button word">'
                           r'<span[^>]*>[^<]*</span>\s*([^<]+?)</button>', self.text)
        return {html.unescape(text): word_id for word_id, text in found}

    @property
    def csrf(self) -> str:
        match = re.search(r'name="csrf_token" value="([^"]+)"', self.text)
        assert match, f"the {self.kind} page has a CSRF token"
        return match.group(1)

    def visible_text(self) -> str:
        """The words on the page, without markup (what a screen reader would say)."""
        body = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", self.text)
        return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))).strip()


@dataclass
class Customer:
    """One phone's browser on the public check page."""

    url: str
    address: str = field(default_factory=new_address)
    lang: str = "en"
    http: requests.Session = field(default_factory=requests.Session)
    last: Page | None = None

    def __post_init__(self) -> None:
        self.http.headers.update({"X-Forwarded-For": self.address,
                                  "Accept-Language": self.lang})

    def _keep(self, response: requests.Response) -> Page:
        self.last = Page(response.status_code, response.text, response.url)
        return self.last

    def open(self, path: str = "/") -> Page:
        return self._keep(self.http.get(self.url + path, timeout=30))

    def post(self, path: str, data: dict[str, Any]) -> Page:
        """Submit a form of the page last shown (its CSRF token goes with it)."""
        page = self.last if self.last is not None and "csrf_token" in self.last.text \
            else self.open()
        return self._keep(self.http.post(self.url + path, data={"csrf_token": page.csrf, **data},
                                         timeout=30))

    def type_code(self, code: str) -> Page:
        self.open()
        return self.post("/verify", {"code": code})

    def answer_number(self, yes: bool) -> Page:
        assert self.last is not None and self.last.kind == "number", "the phone question is shown"
        return self.post("/verify/number", {"t": self.last.ticket,
                                            "answer": "yes" if yes else "no"})

    def tap_word(self, word: str) -> Page:
        """Tap the button showing ``word`` (as the agent said it)."""
        assert self.last is not None and self.last.kind == "word", "the check words are shown"
        return self.post("/verify/word", {"t": self.last.ticket,
                                          "word": self.last.choices[word]})

    def report(self, *, scripts: list[str], number: str | None = None,
               text: str | None = None) -> Page:
        data: dict[str, Any] = {"asked": scripts}
        if number is not None:
            data["number"] = number
        if text is not None:
            data["text"] = text
        return self.post("/report", data)


@dataclass
class Dialer:
    """The company's dialer (or whoever holds its API key)."""

    url: str
    key: str
    http: requests.Session = field(default_factory=requests.Session)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One API call; returns the response (its JSON is ``.json()``)."""
        return self.http.request(method, f"{self.url}/api/v1{path}", json=body, timeout=30,
                                 headers={"Authorization": f"Bearer {self.key}"})

    def issue(self, *, agent: str = AGENT, reason: str = "payment_failed",
              phone: str | None = CUSTOMER_PHONE, **more: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"agent_id": agent, "reason": reason, **more}
        if phone is not None:
            body["phone"] = phone
        response = self.call("POST", "/tickets", body)
        assert response.status_code == 201, response.text
        issued: dict[str, Any] = response.json()
        return issued

    def status(self, ticket_id: str) -> dict[str, Any]:
        response = self.call("GET", f"/tickets/{ticket_id}")
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def check_word(self, ticket_id: str) -> str:
        """The word the agent's screen shows once the customer's page asks for it."""
        word = self.status(ticket_id).get("check_word")
        assert word, "the check word is due"
        return str(word["text"])

    def connected(self, ticket_id: str) -> Any:
        return self.call("POST", f"/tickets/{ticket_id}/connected")

    def close(self, ticket_id: str) -> Any:
        return self.call("POST", f"/tickets/{ticket_id}/close")


@dataclass
class Console:
    """An agent signed in to the agent console in a browser."""

    url: str
    http: requests.Session = field(default_factory=requests.Session)

    def _csrf(self, path: str) -> str:
        page = self.http.get(self.url + path, timeout=30).text
        match = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert match, f"{path} has a CSRF token"
        return match.group(1)

    def sign_in(self, agent: str = AGENT, password: str = AGENT_PASSWORD) -> Console:
        response = self.http.post(self.url + "/console/sign-in", timeout=30, data={
            "csrf_token": self._csrf("/console/sign-in"), "agent_id": agent,
            "password": password})
        assert response.status_code == 200 and 'id="reason"' in response.text, response.text
        return self

    def start_call(self, *, reason: str = "payment_failed", phone: str = CUSTOMER_PHONE
                   ) -> tuple[str, str]:
        """Issue a ticket from the console; returns (ticket id, the call code as displayed)."""
        response = self.http.post(self.url + "/console/tickets", timeout=30, data={
            "csrf_token": self._csrf("/console/"), "reason": reason, "phone": phone})
        assert response.status_code == 200, response.text
        code = re.search(r'class="code-display"[^>]*>([^<]+)<', response.text)
        assert code, "the call page shows the call code"
        ticket_id = response.url.rstrip("/").rsplit("/", 1)[-1]
        return ticket_id, code.group(1).strip()

    def status(self, ticket_id: str) -> dict[str, Any]:
        response = self.http.get(f"{self.url}/console/tickets/{ticket_id}/status.json",
                                 timeout=30)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found


@dataclass
class Desk:
    """Someone of the fraud team signed in to the fraud desk (/fraud/) in a browser."""

    url: str
    http: requests.Session = field(default_factory=requests.Session)

    def sign_in(self, user: str, password: str) -> Desk:
        page = self.http.get(self.url + "/fraud/sign-in", timeout=30).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, "the desk's sign-in form has a CSRF token"
        response = self.http.post(self.url + "/fraud/sign-in", timeout=30, data={
            "csrf_token": token.group(1), "user_id": user, "password": password})
        assert response.status_code == 200 and "/fraud/sign-in" not in response.url, \
            response.text
        return self

    def page(self, path: str) -> Page:
        response = self.http.get(self.url + path, timeout=30)
        return Page(response.status_code, response.text, response.url)

    def alerts(self) -> list[dict[str, Any]]:
        """The live alerts as the desk's page polls them, newest first."""
        response = self.http.get(self.url + "/fraud/alerts.json", timeout=30)
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["alerts"]
        return found


@dataclass
class Instance:
    """The app served on loopback, with the handles a scenario needs to play every part."""

    url: str
    app: Flask
    path: Path
    clock: FixedClock

    def services(self) -> Any:
        with self.app.app_context():
            return services()

    def dialer(self, *, scopes: tuple[str, ...] = ("issue", "status"),
               name: str = "dialer") -> Dialer:
        key, _record = self.services().api_keys.create(name, scopes=set(scopes))
        return Dialer(self.url, key)

    def console(self, agent: str = AGENT) -> Console:
        self.services().passwords.set(agent, AGENT_PASSWORD)
        return Console(self.url).sign_in(agent)

    def desk(self, user: str = "d-001") -> Desk:
        """A fraud-team member signed in to the fraud desk."""
        self.services().desk_users.add(user, "Fraud Team", AGENT_PASSWORD)
        return Desk(self.url).sign_in(user, AGENT_PASSWORD)

    def customer(self, **kwargs: Any) -> Customer:
        return Customer(self.url, **kwargs)

    def events(self, *, ticket_id: str | None = None) -> list[Event]:
        dep = self.services().deployment
        with dep.store.read() as conn:
            return read_events(conn, dep.issuer_id, ticket_id=ticket_id)

    def event_types(self, *, ticket_id: str | None = None) -> list[str]:
        return [e.type for e in self.events(ticket_id=ticket_id)]


def said(instance: Instance, msgid: str, lang: str, **values: object) -> str:
    """What the page says for ``msgid`` in ``lang`` (from the app's own catalogue)."""
    with instance.app.test_request_context(f"/?lang={lang}"):
        text = str(gettext(msgid, **values))
    assert lang == "en" or text != msgid % values, f"{msgid!r} is translated into {lang}"
    return text


def guesses(avoid: set[str]) -> Iterator[str]:
    """Well-formed made-up codes (a right check digit), none of them in ``avoid`` (live ones)."""
    n = 10_000_000
    while True:
        n += 7_919_213
        digits = f"{n % 10**8:08d}"
        code = digits + damm_digit(digits)
        if code not in avoid:
            yield code


def per_client_limit(instance: Instance) -> int:
    """config.toml's [limits] client_failure_limit (30): failed lookups allowed per address,
    counted by the library for every worker and instance (issue 13 item 2)."""
    with instance.app.app_context():
        return services().deployment.config.limits.client_failure_limit


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Instance]]:
    """Start the app on 127.0.0.1 with extra settings: ``serve(API_KEY_LIMIT="5 per minute")``."""
    from werkzeug.serving import make_server

    started: list[tuple[Any, threading.Thread, Flask]] = []

    def start(*, limits: dict[str, int] | None = None, **config: Any) -> Instance:
        path = tmp_path / f"data{len(started)}"
        clock = FixedClock(OFFICE_HOURS)
        init_data_dir(path, now=clock.now())
        if limits:  # config.toml's [limits], as an operator would edit them
            config_file = path / "config.toml"
            text = config_file.read_text("utf-8")
            for name, value in limits.items():
                text, n = re.subn(rf"(?m)^{name} = \d+", f"{name} = {value}", text)
                assert n == 1, f"config.toml sets {name}"
            config_file.write_text(text, "utf-8")
        app = create_app({"DATA_DIR": str(path), "TRUSTED_PROXIES": 1,
                          "RATELIMIT_ENABLED": True, **config})
        with app.app_context():
            services().deployment.clock = clock
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        started.append((server, thread, app))
        return Instance(f"http://127.0.0.1:{server.server_port}", app, path, clock)

    yield start
    for server, thread, app in started:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            services().deployment.store.close()


@pytest.fixture
def instance(serve: Callable[..., Instance]) -> Instance:
    """The app served with its defaults."""
    return serve()
