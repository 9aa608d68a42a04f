"""Forms over HTTPS, prefixed cookies and proxy trust (issue 12 item 2, issue 13 item 9).

Flask-WTF's strict HTTPS check refused every form POST over HTTPS, because the pages send
``Referrer-Policy: no-referrer``. The same-origin check that replaced it needs no Referer:
``Sec-Fetch-Site`` or, failing that, ``Origin``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from http.cookies import SimpleCookie

import pytest
from flask import Flask
from flask.testing import FlaskClient

from callproof import ConfigError
from verifier_app import create_app, services
from verifier_app.security import client_key, own_origin, parse_networks

from .conftest import Web

PASSWORD = "a long demo password"
SITE = "https://shop.example"


@pytest.fixture
def https(make_app: Callable[..., Flask]) -> Flask:
    """The app as served behind the TLS proxy (CALLPROOF_HTTPS=1)."""
    app = make_app(HTTPS=True)
    with app.app_context():
        services().passwords.set("a-001", PASSWORD)
    return app


def _client(app: Flask) -> FlaskClient:
    return app.test_client()


def _token(client: FlaskClient, path: str, base: str = SITE) -> str:
    page = client.get(path, base_url=base).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page[:300]
    return match.group(1)


def _sign_in(client: FlaskClient, headers: dict[str, str], base: str = SITE) -> tuple[int, str]:
    token = _token(client, "/console/sign-in", base)
    response = client.post("/console/sign-in", base_url=base, headers=headers,
                           data={"csrf_token": token, "agent_id": "a-001",
                                 "password": PASSWORD})
    return response.status_code, response.get_data(as_text=True)


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "same-origin", "Origin": "null"},  # Chromium under no-referrer
    {"Sec-Fetch-Site": "none"},  # a person's own action (a reload)
    {"Origin": SITE},  # an older browser: no Fetch Metadata, the real origin
    {"Origin": SITE + ":443"},
    {"Origin": "null"},  # the Fetch standard's form POST under no-referrer: the token decides
    {},  # no evidence either way: the token and the SameSite=Strict cookie decide
], ids=["fetch-same-origin", "fetch-none", "origin", "origin-port", "origin-null", "none"])
def test_a_form_over_https_needs_no_referer(https: Flask, headers: dict[str, str]) -> None:
    client = _client(https)
    status, page = _sign_in(client, headers)
    assert status == 303 or status == 302, page[:500]
    assert "open too long" not in page
    assert client.get("/console/", base_url=SITE).status_code == 200


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain is another site's page too
    {"Sec-Fetch-Site": "cross-site", "Origin": SITE},  # Fetch Metadata wins
    {"Origin": "https://evil.example"},
    {"Origin": "http://shop.example"},  # the same host over plain HTTP is another origin
    {"Origin": "https://shop.example:8443"},
], ids=["cross-site", "same-site", "cross-site-with-origin", "evil", "http", "port"])
def test_a_form_another_site_sends_is_refused_like_a_stale_one(
        https: Flask, headers: dict[str, str]) -> None:
    client = _client(https)
    status, page = _sign_in(client, headers)
    assert status == 400 and "This page was open too long. Sign in again." in page
    assert client.get("/console/", base_url=SITE).status_code != 200  # not signed in
    # The customer's code box answers the same way as for a stale form: the code box again.
    token = _token(client, "/")
    refused = client.post("/verify", base_url=SITE, headers=headers,
                          data={"csrf_token": token, "code": "000000000"})
    assert refused.status_code == 400
    assert "This page was open too long" in refused.get_data(as_text=True)


def test_the_token_is_still_needed_from_this_site(https: Flask) -> None:
    client = _client(https)
    _token(client, "/console/sign-in")
    response = client.post("/console/sign-in", base_url=SITE,
                           headers={"Sec-Fetch-Site": "same-origin", "Origin": SITE},
                           data={"csrf_token": "forged", "agent_id": "a-001",
                                 "password": PASSWORD})
    assert response.status_code == 400
    assert "open too long" in response.get_data(as_text=True)


def test_the_api_takes_no_cookies_and_is_not_origin_checked(https: Flask) -> None:
    with https.app_context():
        key, _record = services().api_keys.create("dialer", scopes={"issue"})
    response = _client(https).post(
        "/api/v1/tickets", base_url=SITE, json={"agent_id": "a-001", "reason": "payment_failed"},
        headers={"Authorization": f"Bearer {key}", "Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 201, response.get_data(as_text=True)


def _cookies(headers: list[str]) -> dict[str, dict[str, str | bool]]:
    found: dict[str, dict[str, str | bool]] = {}
    for header in headers:
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        for name, morsel in jar.items():
            attrs: dict[str, str | bool] = {k: v for k, v in morsel.items() if v}
            attrs["secure"] = "secure" in header.lower().split("; ")
            attrs["raw"] = header
            found[name] = attrs
    return found


def _live_code(app: Flask) -> str:
    with app.app_context():
        return services().issuer.issue(agent_id="a-001", reason="payment_failed",
                                       phone="+886912345678").code


def test_over_https_every_cookie_is_secure_and_host_prefixed(https: Flask) -> None:
    client = _client(https)
    page = client.get("/", base_url=SITE)
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert token
    response = client.post("/verify", base_url=SITE, headers={"Sec-Fetch-Site": "same-origin"},
                           data={"csrf_token": token.group(1), "code": _live_code(https)})
    cookies = _cookies(page.headers.getlist("Set-Cookie")
                       + response.headers.getlist("Set-Cookie"))
    assert set(cookies) == {"__Host-cp_session", "__Host-cp_claim"}, cookies
    for attrs in cookies.values():
        raw = str(attrs["raw"])
        assert attrs["secure"] and "Path=/;" in raw + ";" and "Domain" not in raw, raw
        assert "HttpOnly" in raw and "SameSite=Strict" in raw, raw
    # the prefixed claim cookie is the one read back: the check goes on in this browser
    again = client.post("/verify", base_url=SITE, headers={"Sec-Fetch-Site": "same-origin"},
                        data={"csrf_token": token.group(1), "code": "000000000"})
    assert "Set-Cookie" not in again.headers or "__Host-cp_claim" not in str(
        again.headers.getlist("Set-Cookie"))


def test_over_plain_http_the_names_stay_plain(web: Web) -> None:
    client = web.client
    page = client.get("/")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert token
    response = client.post("/verify", data={"csrf_token": token.group(1),
                                            "code": _live_code(web.app)})
    cookies = _cookies(page.headers.getlist("Set-Cookie")
                       + response.headers.getlist("Set-Cookie"))
    assert set(cookies) == {"cp_session", "cp_claim"}
    assert not any(attrs["secure"] for attrs in cookies.values())
    assert "Path=/verify" in str(cookies["cp_claim"]["raw"])
    assert "Strict-Transport-Security" not in page.headers


def test_hsts_is_sent_when_the_proxy_speaks_plain_http_to_the_app(https: Flask) -> None:
    # CALLPROOF_HTTPS=1 with no trusted proxy: the hop is http, the site is https.
    response = _client(https).get("/", base_url="http://shop.example")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    with https.test_request_context("/", base_url="http://shop.example"):
        assert own_origin() == SITE


@pytest.mark.parametrize(("base", "origin"), [
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000"), ("http://localhost", "http://localhost"),
    ("http://localhost:80", "http://localhost"), ("http://[::1]:8000", "http://[::1]:8000"),
    ("http://[::1]", "http://[::1]"), ("http://Shop.Example", "http://shop.example")])
def test_the_own_origin_is_written_as_a_browser_writes_origin(
        web: Web, base: str, origin: str) -> None:
    with web.app.test_request_context("/", base_url=base):
        assert own_origin() == origin
    # and a form from that origin (no Fetch Metadata) is this site's
    client = web.app.test_client()
    token = _token(client, "/", base)
    response = client.post("/verify", base_url=base, headers={"Origin": origin},
                           data={"csrf_token": token, "code": "000000000"})
    assert "open too long" not in response.get_data(as_text=True)


# --- proxy trust ------------------------------------------------------------------------------


def _whoami(app: Flask) -> FlaskClient:
    @app.get("/_whoami")
    def whoami() -> str:
        from flask import request

        return f"{client_key()} {request.scheme}"

    return app.test_client()


def test_forwarding_headers_count_only_from_the_configured_proxies(
        make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(TRUSTED_PROXIES=1, TRUSTED_PROXY_ADDRESSES="10.0.0.1, 192.0.2.0/24")
    client = _whoami(app)
    spoof = {"X-Forwarded-For": "203.0.113.50", "X-Forwarded-Proto": "https"}

    def who(peer: str) -> str:
        return client.get("/_whoami", environ_base={"REMOTE_ADDR": peer},
                          headers=spoof).get_data(as_text=True)

    assert who("10.0.0.1") == "203.0.113.50 https"  # the proxy
    assert who("192.0.2.77") == "203.0.113.50 https"  # in the proxies' network
    assert who("::ffff:10.0.0.1") == "203.0.113.50 https"
    with caplog.at_level(logging.WARNING, logger="callproof.web"):
        # A client that reaches the app's port directly cannot choose its address or scheme.
        assert who("198.51.100.7") == "198.51.100.7 http"
        assert who("198.51.100.8") == "198.51.100.8 http"
    warnings = [r for r in caplog.records if "CALLPROOF_TRUSTED_PROXY_ADDRESSES" in r.message]
    assert len(warnings) == 1 and "198.51.100" not in warnings[0].getMessage()


def test_a_spoofed_address_does_not_escape_the_lookup_limit(
        web: Web, make_app: Callable[..., Flask]) -> None:
    config_file = web.path / "config.toml"  # the library's per-address limit: 2
    config_file.write_text(re.sub(r"(?m)^client_failure_limit = \d+", "client_failure_limit = 2",
                                  config_file.read_text("utf-8")), "utf-8")
    app = make_app(TRUSTED_PROXIES=1, TRUSTED_PROXY_ADDRESSES="10.0.0.1", RATELIMIT_ENABLED=True)
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"',
                      client.get("/").get_data(as_text=True))
    assert token

    def lookup(code: str, n: int) -> str:
        return client.post("/verify", data={"csrf_token": token.group(1), "code": code},
                           environ_base={"REMOTE_ADDR": "198.51.100.7"},
                           headers={"X-Forwarded-For": f"203.0.113.{n}"},
                           follow_redirects=True).get_data(as_text=True)

    for n in range(2):
        lookup("000000000", n)
    assert "Ask the caller" not in lookup(_live_code(app), 99)  # still limited


def test_the_address_names_the_proxy_when_no_proxy_is_trusted_and_says_so_once(
        web: Web, caplog: pytest.LogCaptureFixture) -> None:
    client = _whoami(web.app)
    with caplog.at_level(logging.WARNING, logger="callproof.web"):
        for _ in range(3):
            got = client.get("/_whoami", environ_base={"REMOTE_ADDR": "127.0.0.1"},
                             headers={"X-Forwarded-For": "203.0.113.50"})
            assert got.get_data(as_text=True) == "127.0.0.1 http"
    warnings = [r for r in caplog.records if "CALLPROOF_TRUSTED_PROXIES is 0" in r.message]
    assert len(warnings) == 1


def test_naming_the_proxies_implies_one_and_bad_entries_are_refused(
        make_app: Callable[..., Flask]) -> None:
    client = _whoami(make_app(TRUSTED_PROXY_ADDRESSES="127.0.0.1"))
    got = client.get("/_whoami", environ_base={"REMOTE_ADDR": "127.0.0.1"},
                     headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.50"})
    assert got.get_data(as_text=True) == "203.0.113.50 http"  # the last hop only
    with pytest.raises(ConfigError, match="'10.0.0.300'"):
        parse_networks("10.0.0.1, 10.0.0.300")
    assert parse_networks("") == ()


@pytest.fixture
def env_app(web: Web, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("CALLPROOF_HTTPS", "1")
    monkeypatch.setenv("CALLPROOF_TRUSTED_PROXIES", "1")
    monkeypatch.setenv("CALLPROOF_TRUSTED_PROXY_ADDRESSES", "127.0.0.1,::1")
    app = create_app({"DATA_DIR": str(web.path), "TESTING": True})
    yield app
    with app.app_context():
        services().deployment.store.close()


def test_the_settings_come_from_the_environment(env_app: Flask) -> None:
    assert env_app.config["HTTPS"] and env_app.config["SESSION_COOKIE_NAME"] == \
        "__Host-cp_session"
    response = _whoami(env_app).get("/_whoami", environ_base={"REMOTE_ADDR": "::1"},
                                    headers={"X-Forwarded-For": "203.0.113.9",
                                             "X-Forwarded-Proto": "https"})
    assert response.get_data(as_text=True) == "203.0.113.9 https"
