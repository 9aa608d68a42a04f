"""The customer's check, the console and the fraud desk over HTTPS through the shipped nginx
configuration, the API and its idempotency through it, and slow clients held by nginx, not by the
app (issue 12 items 1–3). test_failover.py kills an instance."""

from __future__ import annotations

import http.cookiejar
import json
import re
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from .conftest import PASSWORD, cli, issue

CHROMIUM = "/usr/bin/chromium"
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@pytest.fixture
def chromium(front: Any, playwright: Any) -> Iterator[Any]:
    """Debian's Chromium that trusts the test CA's server certificate (its SPKI pinned), with
    certificate errors NOT ignored; launched from the process's one Playwright (tests/conftest.py,
    which skips, or fails in CI, without Chromium)."""
    spki = front.nginx.certificates.spki_sha256
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, timeout=60_000,
        args=["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run",
              "--disable-background-networking", "--disable-component-update",
              "--disable-sync", f"--ignore-certificate-errors-spki-list={spki}"])
    try:
        yield browser
    finally:
        browser.close()


def _context(browser: Any, width: int = 1000) -> Any:
    ctx = browser.new_context(ignore_https_errors=False,
                              viewport={"width": width, "height": 900})
    ctx.set_default_timeout(20_000)
    return ctx


def test_the_check_the_console_and_the_desk_work_in_chromium_over_https(
        front: Any, chromium: Any) -> None:
    origin = front.nginx.origin
    agent_ctx, customer_ctx, desk_ctx = (_context(chromium), _context(chromium, 420),
                                         _context(chromium, 1200))
    try:
        # The agent signs in to the console over HTTPS and starts a call.
        agent = agent_ctx.new_page()
        agent.goto(f"{origin}/console/sign-in")
        agent.fill("#agent_id", "a-001")
        agent.fill("#password", PASSWORD)
        agent.keyboard.press("Enter")
        agent.wait_for_selector("#reason")
        agent.select_option("#reason", "payment_failed")
        agent.fill("#phone", "+886912345678")
        agent.click("form[action$='/console/tickets'] button[type=submit]")
        code = agent.inner_text(".code-display").strip()
        assert len(code.replace(" ", "")) == 9

        # The customer types it (full-width digits, spaces), answers, taps the agent's word.
        customer = customer_ctx.new_page()
        customer.goto(f"{origin}/")
        customer.fill("#code", " " + code.translate(FULLWIDTH) + " ")
        customer.click("button[type=submit]")
        customer.wait_for_selector("button[value=yes]")
        assert "5678" in customer.inner_text("h1")
        customer.click("button[value=yes]")
        customer.wait_for_selector("button.word")
        agent.locator("#check-word:not([hidden])").wait_for(timeout=20_000)
        word = agent.inner_text("#word-text").strip()
        customer.locator("button.word", has_text=word).click()
        customer.wait_for_selector(".panel.confirmed")
        assert "This is Example Shop." in customer.inner_text("h1")
        agent.locator("#call-status[data-state=verified]").wait_for(timeout=20_000)

        # Every cookie the browser holds is Secure and __Host- prefixed.
        for ctx in (agent_ctx, customer_ctx):
            cookies = ctx.cookies()
            assert cookies and all(c["secure"] and c["name"].startswith("__Host-")
                                   and c["path"] == "/" for c in cookies), cookies
        assert {c["name"] for c in customer_ctx.cookies()} == {"__Host-cp_session",
                                                               "__Host-cp_claim"}

        # The fraud desk signs in over HTTPS.
        desk = desk_ctx.new_page()
        desk.goto(f"{origin}/fraud/sign-in")
        desk.fill("#user_id", "d-001")
        desk.fill("#password", PASSWORD)
        desk.keyboard.press("Enter")
        desk.wait_for_selector("#alert-table")

        # HSTS on every page.
        response = customer.goto(f"{origin}/")
        assert response is not None
        assert response.headers["strict-transport-security"].startswith("max-age=")
    finally:
        for ctx in (agent_ctx, customer_ctx, desk_ctx):
            ctx.close()


def test_plain_http_only_redirects_to_https(front: Any) -> None:
    with socket.create_connection(("127.0.0.1", front.nginx.http_port), timeout=10) as s:
        s.sendall(b"GET /verify?x=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        answer = _read_all(s)
    assert answer.startswith(b"HTTP/1.1 301")
    assert f"Location: {front.nginx.origin}/verify?x=1".encode() in answer


# --- a genuine browser, without a browser ----------------------------------------------------


@dataclass
class Browser:
    """A customer's browser over HTTPS: cookies, the CSRF token, the test CA trusted."""

    origin: str
    opener: urllib.request.OpenerDirector

    @classmethod
    def new(cls, front: Any) -> Browser:
        jar = http.cookiejar.CookieJar()
        https = urllib.request.HTTPSHandler(context=front.nginx.ssl_context())
        return cls(front.nginx.origin,
                   urllib.request.build_opener(https, urllib.request.HTTPCookieProcessor(jar)))

    def get(self, path: str, timeout: float = 5) -> tuple[int, str]:
        with self.opener.open(self.origin + path, timeout=timeout) as r:
            return r.status, r.read().decode()

    def lookup(self, code: str, timeout: float = 5) -> tuple[int, str]:
        """The page asks for the code; the code is typed and sent."""
        _status, page = self.get("/", timeout)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, page[:300]
        body = urllib.parse.urlencode({"csrf_token": token.group(1), "code": code}).encode()
        with self.opener.open(self.origin + "/verify", data=body, timeout=timeout) as r:
            return r.status, r.read().decode()


def _read_all(s: socket.socket) -> bytes:
    chunks = []
    while chunk := s.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_the_api_works_through_the_front_and_a_retry_gets_the_same_ticket(
        front: Any) -> None:
    out = cli(front.env, "api-keys", "create", "dialer", "--json")
    key = json.loads(out)["key"]
    https = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=front.nginx.ssl_context()))
    body = json.dumps({"agent_id": "a-001", "reason": "payment_failed",
                       "phone": "+886912345678"}).encode()

    def post() -> tuple[int, dict[str, Any], str | None]:
        request = urllib.request.Request(  # noqa: S310 - https to our own front
            front.nginx.origin + "/api/v1/tickets", data=body, method="POST",
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                     "Idempotency-Key": "9a1f1a1e-3c2b-4c55-9e55-2f0b8d8f6f01"})
        with https.open(request, timeout=10) as r:
            return r.status, json.loads(r.read()), r.headers.get("Idempotent-Replayed")

    first, again = post(), post()
    assert first[0] == again[0] == 201 and first[1] == again[1]
    assert (first[2], again[2]) == (None, "true")


# --- slow clients ------------------------------------------------------------------------------


SLOW_SOCKETS = 20
SLOW_LINE_EVERY = 3.0  # seconds between the slow clients' header lines
ATTACK_SECONDS = 20.0


def test_slow_clients_leave_genuine_lookups_answering(front: Any) -> None:
    """20 TLS connections send a request header one line every 3 s for up to 20 s (the attack
    that took `callproof serve` down when it stood alone). Genuine lookups keep answering within
    5 s each, and nginx cuts every slow header off after client_header_timeout (10 s)."""
    code = issue(front.env)["code"]
    closed_after: list[float] = []
    stop = threading.Event()
    context = front.nginx.ssl_context()
    port = front.nginx.https_port

    def slow_client() -> None:
        start = time.monotonic()
        try:
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            with context.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(f"POST /verify HTTP/1.1\r\nHost: localhost:{port}\r\n".encode())
                n = 0
                while not stop.wait(SLOW_LINE_EVERY):
                    s.sendall(f"X-Slow-{n}: {'a' * 20}\r\n".encode())
                    n += 1
                    s.settimeout(0.05)
                    try:
                        if s.recv(4096) == b"":
                            break
                    except (TimeoutError, ssl.SSLWantReadError):
                        pass
                    except (ssl.SSLError, OSError):
                        break
                    finally:
                        s.settimeout(10)
        except OSError:
            pass  # the server closed it: what we want to see
        closed_after.append(time.monotonic() - start)

    attackers = [threading.Thread(target=slow_client, daemon=True) for _ in range(SLOW_SOCKETS)]
    for t in attackers:
        t.start()
    time.sleep(1.0)  # let them all connect
    browser = Browser.new(front)
    latencies: list[float] = []
    failures: list[str] = []
    deadline = time.monotonic() + ATTACK_SECONDS - 2
    try:
        while time.monotonic() < deadline:
            began = time.monotonic()
            try:
                status, page = browser.lookup(code)
                if status != 200 or 'value="yes"' not in page:
                    failures.append(f"status {status}")
            except (OSError, urllib.error.URLError) as e:
                failures.append(repr(e))
            latencies.append(time.monotonic() - began)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
    finally:
        stop.set()
        for t in attackers:
            t.join(timeout=15)
    assert not failures, failures
    assert len(latencies) >= 10 and max(latencies) < 5.0, latencies
    # nginx dropped every slow header within its 10 s (+ one line's wait and slack).
    assert len(closed_after) == SLOW_SOCKETS
    assert max(closed_after) < 10 + SLOW_LINE_EVERY + 3, sorted(closed_after)
