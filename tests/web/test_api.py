"""The issuer API (verifier_app/api.py) through the Flask test client, on SQLite and PostgreSQL.

Every response is checked against spec/openapi.yaml (``Api.call``); every refusal is checked to
change nothing (``Api.counts``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from callproof import WORDS, CheckFailed, new_client_token, verify_ticket
from callproof._cli import cli
from callproof.store import schema as tables
from callproof.store.events import read_events
from verifier_app import services

from ..conftest import T0
from .conftest import NewApp, Web
from .test_openapi import check_response

ISSUE = "/tickets"
STATUS = "/tickets/{ticket_id}"
STEP = "/tickets/{ticket_id}/{action}"
CALL = {"agent_id": "a-001", "reason": "payment_failed", "customer_ref": "C-1001",
        "phone": "+886912345678"}


@dataclass
class Api:
    app: Flask
    client: FlaskClient
    path: Path
    key: str
    key_id: str

    def bearer(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def call(self, method: str, template: str, *, key: str | None = None,
             headers: dict[str, str] | None = None, query: str = "",
             **params: Any) -> TestResponse:
        """Send a request and check the answer against the OpenAPI document."""
        path_params = {k: params.pop(k) for k in ("ticket_id", "action") if k in params}
        url = "/api/v1" + template.format(**path_params) + query
        response = self.client.open(url, method=method,
                                    headers={**self.bearer(key), **(headers or {})}, **params)
        documented = template if "{action}" not in template else \
            f"/tickets/{{ticket_id}}/{path_params['action']}"
        check_response(response, documented, method)
        return response

    def issue(self, key: str | None = None, **body: Any) -> TestResponse:
        return self.call("POST", ISSUE, key=key, json={**CALL, **body})

    def step(self, action: str, ticket_id: str, key: str | None = None) -> TestResponse:
        return self.call("POST", STEP, key=key, ticket_id=ticket_id, action=action)

    def status(self, ticket_id: str, key: str | None = None, query: str = "") -> TestResponse:
        return self.call("GET", STATUS, key=key, ticket_id=ticket_id, query=query)

    def new_key(self, *scopes: str) -> tuple[str, str]:
        with self.app.app_context():
            key, record = services().api_keys.create("another", scopes=set(scopes) or None)
        return key, record.key_id

    def counts(self) -> tuple[int, ...]:
        """Rows that any write would add to: events, tickets, customer handles, live codes."""
        with self.app.app_context(), services().deployment.store.read() as conn:
            return tuple(conn.execute(select(func.count()).select_from(t)).scalar_one()
                         for t in (tables.events, tables.tickets, tables.customers,
                                   tables.live_codes))

    def events(self, ticket_id: str | None = None) -> list[Any]:
        with self.app.app_context(), services().deployment.store.read() as conn:
            return read_events(conn, services().deployment.issuer_id, ticket_id=ticket_id)

    def cli(self, *args: str) -> Any:
        return CliRunner().invoke(cli, ["--data-dir", str(self.path), *args])


def api_for(app: Flask, path: Path, name: str = "dialer",
            scopes: tuple[str, ...] = ()) -> Api:
    """An Api with a new key called ``name`` (the default scopes when ``scopes`` is empty)."""
    with app.app_context():
        key, record = services().api_keys.create(name, scopes=set(scopes) or None)
    return Api(app, app.test_client(), path, key, record.key_id)


@pytest.fixture
def api(web: Web) -> Api:
    return api_for(web.app, web.path)


MakeApi = Callable[..., Api]


@pytest.fixture
def make_api(new_app: NewApp) -> MakeApi:
    """An Api over an app built with extra config (tiny limits)."""
    return lambda **config: api_for(*new_app(**config))


def refused(api: Api, response: TestResponse, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    assert body["error"] == error, body
    assert body["message"][:1].isupper() and body["message"].endswith("."), body
    return body


# --- issuing ----------------------------------------------------------------------------------


def test_issue_returns_a_signed_ticket_and_the_code_and_logs_the_key(api: Api) -> None:
    response = api.issue()
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"ticket_id", "ticket", "code", "code_display", "expires_at"}
    assert body["code_display"].replace(" ", "") == body["code"]
    assert body["expires_at"] == "2026-11-23T09:45:00Z"  # the fixed clock + 900 s
    assert response.headers["Location"] == f"/api/v1/tickets/{body['ticket_id']}"
    assert response.headers["Cache-Control"] == "no-store"
    with api.app.app_context(), services().deployment.store.read() as conn:
        keys = services().deployment.keyset(conn)
    claims = verify_ticket(body["ticket"], keys, now=T0)
    assert claims.jti == body["ticket_id"] and claims.agent_id == "a-001"
    assert claims.dst == "5678" and claims.reason == "payment_failed"
    (issued,) = api.events(body["ticket_id"])
    assert issued.type == "ticket.issued" and issued.data["api_key"] == api.key_id
    assert "+886912345678" not in json.dumps(issued.data) and "C-1001" not in json.dumps(
        issued.data)


def test_issue_takes_only_agent_and_reason_and_a_ttl(api: Api) -> None:
    response = api.call("POST", ISSUE, json={"agent_id": "a-002", "reason": "order_delivery",
                                             "ttl": 120, "locale": "zh-Hant",
                                             "customer_ref": None, "phone": None})
    assert response.status_code == 201
    assert response.get_json()["expires_at"] == "2026-11-23T09:32:00Z"


@pytest.mark.parametrize(("body", "error"), [
    ({"agent_id": "a-999"}, "unknown_agent"),
    ({"reason": "lottery_win"}, "unknown_reason"),
    ({"phone": "0912345678"}, "bad_phone"),  # not E.164
    ({"phone": "+886 12"}, "bad_phone"),
    ({"phone": ""}, "bad_phone"),  # an empty number must not silently skip the phone question
    ({"phone": 886912345678}, "bad_phone"),
    ({"ttl": 10}, "bad_ttl"),
    ({"ttl": 100_000}, "bad_ttl"),
    ({"ttl": "900"}, "bad_ttl"),
    ({"ttl": 900.5}, "bad_ttl"),
    ({"ttl": True}, "bad_ttl"),
    ({"ttl": 10**40}, "bad_ttl"),
    ({"agent_id": 17}, "invalid_field"),
    ({"agent_id": "a 001"}, "invalid_field"),
    ({"agent_id": "x" * 65}, "invalid_field"),
    ({"reason": ["payment_failed"]}, "invalid_field"),
    ({"customer_ref": ""}, "invalid_field"),
    ({"customer_ref": "   "}, "invalid_field"),
    ({"customer_ref": "x" * 257}, "invalid_field"),
    ({"customer_ref": "C-\ud800"}, "invalid_field"),  # a lone surrogate cannot be stored
    ({"customer_ref": "C-1\x00"}, "invalid_field"),
    ({"locale": "fr"}, "invalid_field"),
    ({"agent_id": None}, "missing_field"),
    ({"extra": 1}, "unknown_field"),
    ({"Agent_ID": "a-001"}, "unknown_field"),
])
def test_bad_fields_are_422_and_change_nothing(api: Api, body: dict[str, Any],
                                              error: str) -> None:
    before = api.counts()
    refused(api, api.issue(**body), 422, error)
    assert api.counts() == before


def test_missing_members_are_422(api: Api) -> None:
    before = api.counts()
    refused(api, api.call("POST", ISSUE, json={"agent_id": "a-001"}), 422, "missing_field")
    refused(api, api.call("POST", ISSUE, json={}), 422, "missing_field")
    assert api.counts() == before


def test_a_disabled_agent_or_reason_cannot_be_named(api: Api) -> None:
    with api.app.app_context():
        services().admin.set_agent_enabled("a-001", False)
    before = api.counts()
    body = refused(api, api.issue(), 422, "disabled")
    assert "a-001" in body["message"]
    assert api.counts() == before


@pytest.mark.parametrize(("data", "content_type", "status", "error"), [
    ("agent_id=a-001&reason=payment_failed", "application/x-www-form-urlencoded", 415,
     "unsupported_media_type"),
    ('{"agent_id": "a-001"}', "text/plain", 415, "unsupported_media_type"),
    ("", None, 415, "unsupported_media_type"),
    ("", "application/json", 400, "invalid_json"),
    ('{"agent_id": "a-001",', "application/json", 400, "invalid_json"),
    ('["a-001", "payment_failed"]', "application/json", 400, "invalid_json"),
    ('"a-001"', "application/json", 400, "invalid_json"),
    ("null", "application/json", 400, "invalid_json"),
    ('{"agent_id": "a-001", "agent_id": "a-002", "reason": "payment_failed"}',
     "application/json", 400, "invalid_json"),  # duplicate members are ambiguous
    ('{"agent_id": "a-001", "reason": "payment_failed", "ttl": NaN}', "application/json", 400,
     "invalid_json"),
    (b'{"agent_id": "\xff"}', "application/json", 400, "invalid_json"),
    ("[" * 5000 + "]" * 5000, "application/json", 400, "invalid_json"),
])
def test_bodies_that_are_not_a_json_object_are_refused(api: Api, data: str | bytes,
                                                       content_type: str | None, status: int,
                                                       error: str) -> None:
    before = api.counts()
    refused(api, api.call("POST", ISSUE, data=data, content_type=content_type), status, error)
    assert api.counts() == before


def test_a_body_over_16_kib_is_413(api: Api) -> None:
    before = api.counts()
    big = json.dumps({**CALL, "customer_ref": "x" * 17_000})
    refused(api, api.call("POST", ISSUE, data=big, content_type="application/json"), 413,
            "too_large")
    assert api.counts() == before


# --- the agent's view through the whole call ----------------------------------------------------


def test_issue_status_check_word_close_through_the_customers_check(api: Api) -> None:
    issued = api.issue().get_json()
    tid = issued["ticket_id"]
    first = api.status(tid).get_json()
    assert first == {"ticket_id": tid, "state": "issued", "alerts": [],
                     "expires_at": issued["expires_at"]}
    assert api.step("connected", tid).get_json() == {"ticket_id": tid, "state": "connected"}
    assert api.step("connected", tid).get_json()["state"] == "connected"  # again: no change

    client = new_client_token()
    with api.app.app_context():
        flow = services().flow
        step = flow.lookup(issued["code_display"], client)
        assert step.step == "number"
        assert "check_word" not in api.status(tid).get_json()  # claimed, number not confirmed
        assert api.status(tid).get_json()["state"] == "claimed"
        step = flow.answer_number(tid, client, yes=True)
        choices = {w.id for w in step.choices}

    shown = api.status(tid).get_json()
    assert shown["state"] == "number_confirmed"
    word = shown["check_word"]
    assert word["id"] in choices and word["text"] and word["emoji"]
    chinese = api.status(tid, query="?lang=zh-Hant").get_json()["check_word"]
    assert chinese["id"] == word["id"] and chinese["text"] != word["text"]
    assert api.status(tid, query="?lang=zh-Hans").get_json()["check_word"]["id"] == word["id"]

    with api.app.app_context():
        assert services().flow.choose_word(tid, client, word["id"]).step == "verified"
    done = api.status(tid).get_json()
    assert done["state"] == "verified" and "check_word" not in done

    assert api.step("close", tid).get_json() == {"ticket_id": tid, "state": "closed"}
    assert api.status(tid).get_json()["state"] == "closed"
    by_type = {e.type: e.data for e in api.events(tid)}
    for kind in ("ticket.issued", "ticket.connected", "ticket.closed"):
        assert by_type[kind]["api_key"] == api.key_id
    assert "api_key" not in by_type["ticket.claimed"]  # the customer's steps name no key


@pytest.mark.parametrize("page", ["en", "zh-Hant", "zh-Hans"])
def test_status_adds_the_check_word_as_the_customer_sees_it(api: Api, page: str) -> None:
    """Issue 14 item 11 for the dialer: once the customer typed the code on a page in
    ``page``, the check word carries that language and the word in it; ``text`` stays in the
    ``lang`` asked for, so clients that read only ``text`` see what they saw before."""
    issued = api.issue().get_json()
    tid = issued["ticket_id"]
    client = new_client_token()
    with api.app.app_context():
        services().flow.lookup(issued["code"], client, lang=page)
        services().flow.answer_number(tid, client, yes=True)
    for asked in ("en", "zh-Hans"):
        word = api.status(tid, query=f"?lang={asked}").get_json()["check_word"]
        known = WORDS[word["id"]]
        assert word == {"id": known.id, "emoji": known.emoji, "text": known.text(asked),
                        "customer_lang": page, "customer_text": known.text(page)}


def test_without_a_number_the_word_shows_once_claimed(api: Api) -> None:
    issued = api.call("POST", ISSUE, json={"agent_id": "a-003",
                                           "reason": "return_pickup"}).get_json()
    with api.app.app_context():
        services().flow.lookup(issued["code"], new_client_token())
    shown = api.status(issued["ticket_id"]).get_json()
    assert shown["state"] == "claimed" and "check_word" in shown


def test_a_failed_check_shows_its_alert_and_close_keeps_failed(api: Api) -> None:
    issued = api.issue().get_json()
    tid = issued["ticket_id"]
    with api.app.app_context():
        services().flow.lookup(issued["code"], new_client_token())
        with pytest.raises(CheckFailed):
            services().flow.lookup(issued["code"], new_client_token())  # a second device
    shown = api.status(tid).get_json()
    assert shown["state"] == "failed"
    assert [a["type"] for a in shown["alerts"]] == ["claimed_elsewhere"]
    assert api.step("close", tid).get_json()["state"] == "failed"


def test_refused_transitions_are_409_and_change_nothing(api: Api) -> None:
    tid = api.issue().get_json()["ticket_id"]
    assert api.step("revoke", tid).get_json()["state"] == "revoked"
    before = api.counts()
    body = refused(api, api.step("revoke", tid), 409, "wrong_state")
    assert "revoked" in body["message"]
    refused(api, api.step("connected", tid), 409, "wrong_state")
    assert api.counts() == before
    other = api.issue().get_json()["ticket_id"]
    api.step("close", other)
    before = api.counts()
    refused(api, api.step("close", other), 409, "wrong_state")
    refused(api, api.step("revoke", other), 409, "wrong_state")
    assert api.counts() == before
    revoked = [e for e in api.events(tid) if e.type == "ticket.revoked"]
    assert revoked[0].data["api_key"] == api.key_id


@pytest.mark.parametrize("ticket_id", ["t_doesnotexist000000000", "x", "t_" + "a" * 70,
                                       "t%00x", "%F0%9F%8D%89"])
def test_unknown_tickets_are_404(api: Api, ticket_id: str) -> None:
    before = api.counts()
    for response in (api.status(ticket_id), *(api.step(a, ticket_id)
                                             for a in ("connected", "close", "revoke"))):
        refused(api, response, 404, "not_found")
    assert api.counts() == before


def test_status_refuses_an_unknown_language(api: Api) -> None:
    tid = api.issue().get_json()["ticket_id"]
    refused(api, api.status(tid, query="?lang=fr"), 422, "invalid_field")


# --- keys and scopes --------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz",
                                    "Bearer cpk_nope", "Bearer cpk_0123456789abcdef_secret",
                                    "Token {key}", "Bearer {key}x"])
def test_no_key_or_a_bad_key_is_401(api: Api, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header.format(key=api.key)}
    before = api.counts()
    tid = "t_doesnotexist000000000"
    responses = [
        api.client.post("/api/v1/tickets", json=CALL, headers=headers),
        api.client.get(f"/api/v1/tickets/{tid}", headers=headers),
        api.client.post(f"/api/v1/tickets/{tid}/close", headers=headers),
    ]
    for response, (path, method) in zip(responses, [(ISSUE, "POST"), (STATUS, "GET"),
                                                    ("/tickets/{ticket_id}/close", "POST")],
                                        strict=True):
        check_response(response, path, method)
        refused(api, response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert api.counts() == before


def test_the_wrong_secret_of_a_real_key_is_401(api: Api) -> None:
    refused(api, api.issue(key=f"cpk_{api.key_id}_{'A' * 43}"), 401, "unauthorized")


def test_a_status_only_key_reads_but_cannot_issue(api: Api) -> None:
    tid = api.issue().get_json()["ticket_id"]
    status_key, _ = api.new_key("status")
    before = api.counts()
    body = refused(api, api.issue(key=status_key), 403, "insufficient_scope")
    assert "issue" in body["message"]
    for action in ("connected", "close", "revoke"):
        response = api.step(action, tid, key=status_key)
        refused(api, response, 403, "insufficient_scope")
        assert 'scope="issue"' in response.headers["WWW-Authenticate"]
    assert api.counts() == before
    assert api.status(tid, key=status_key).status_code == 200


def test_an_issue_only_key_cannot_read_status(api: Api) -> None:
    tid = api.issue().get_json()["ticket_id"]
    issue_key, _ = api.new_key("issue")
    assert api.issue(key=issue_key).status_code == 201
    refused(api, api.status(tid, key=issue_key), 403, "insufficient_scope")


def test_enrol_and_reveal_keys_exist_but_open_nothing_here(api: Api) -> None:
    made = api.cli("api-keys", "create", "app-backend", "--scope", "enrol,reveal", "--json")
    assert made.exit_code == 0, made.output
    key = json.loads(made.stdout)["key"]
    assert json.loads(made.stdout)["scopes"] == ["enrol", "reveal"]
    tid = api.issue().get_json()["ticket_id"]
    refused(api, api.issue(key=key), 403, "insufficient_scope")
    refused(api, api.status(tid, key=key), 403, "insufficient_scope")


def test_a_key_revoked_with_the_cli_is_refused_at_the_next_request(api: Api) -> None:
    tid = api.issue().get_json()["ticket_id"]
    revoked = api.cli("api-keys", "revoke", api.key_id)
    assert revoked.exit_code == 0 and api.key_id in revoked.output
    before = api.counts()
    refused(api, api.issue(), 401, "unauthorized")
    refused(api, api.status(tid), 401, "unauthorized")
    refused(api, api.step("close", tid), 401, "unauthorized")
    assert api.counts() == before


# --- limits ---------------------------------------------------------------------------------


def test_each_key_has_its_own_limit_over_all_endpoints(make_api: MakeApi) -> None:
    api = make_api(API_KEY_LIMIT="3 per minute")
    tid = api.issue().get_json()["ticket_id"]
    assert api.status(tid).status_code == 200
    assert api.step("connected", tid).status_code == 200
    before = api.counts()
    for response in (api.status(tid), api.issue(), api.step("close", tid)):
        refused(api, response, 429, "rate_limited")
        assert int(response.headers["Retry-After"]) >= 1
    assert api.counts() == before
    other, _ = api.new_key()
    assert api.status(tid, key=other).status_code == 200


def test_requests_with_a_bad_secret_do_not_use_up_a_keys_limit(make_api: MakeApi) -> None:
    api = make_api(API_KEY_LIMIT="2 per minute")
    forged = f"cpk_{api.key_id}_{'A' * 43}"  # the real key id, a wrong secret
    for _ in range(5):
        refused(api, api.issue(key=forged), 401, "unauthorized")
    assert api.issue().status_code == 201


def test_each_agent_has_an_issuing_limit_whichever_key_asks(make_api: MakeApi) -> None:
    api = make_api(AGENT_ISSUE_LIMIT="2 per minute")
    other, _ = api.new_key()
    assert api.issue().status_code == 201
    assert api.issue(key=other).status_code == 201
    before = api.counts()
    refused(api, api.issue(), 429, "rate_limited")
    refused(api, api.issue(key=other), 429, "rate_limited")
    assert api.counts() == before
    assert api.issue(agent_id="a-002").status_code == 201  # another agent is not held up
    tid = api.issue(agent_id="a-002").get_json()["ticket_id"]
    assert api.status(tid).status_code == 200  # reading is not issuing


# --- everything else is JSON -------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "status", "error"), [
    ("GET", "/api/v1/tickets", 405, "method_not_allowed"),
    ("DELETE", "/api/v1/tickets/t_x", 405, "method_not_allowed"),
    ("GET", "/api/v1/tickets/t_x/close", 405, "method_not_allowed"),
    ("PUT", "/api/v1/tickets/t_x/revoke", 405, "method_not_allowed"),
    ("POST", "/api/v1/tickets/t_x", 405, "method_not_allowed"),
    ("POST", "/api/v1/tickets/t_x/claim", 404, "not_found"),
    ("GET", "/api/v1/keys", 404, "not_found"),
])
def test_unknown_paths_and_methods_answer_json(api: Api, method: str, path: str, status: int,
                                               error: str) -> None:
    response = api.client.open(path, method=method, headers=api.bearer())
    assert response.mimetype == "application/json"
    refused(api, response, status, error)
    if status == 405:
        assert "Allow" in response.headers


# --- the api-keys command ---------------------------------------------------------------------


def test_api_keys_create_prints_the_key_once_list_never_does(api: Api) -> None:
    made = api.cli("api-keys", "create", "dialer-2", "--json")
    assert made.exit_code == 0, made.output
    out = json.loads(made.stdout)
    assert set(out) == {"key", "key_id", "scopes"} and out["scopes"] == ["issue", "status"]
    assert out["key"].startswith(f"cpk_{out['key_id']}_")
    assert "only time" in made.stderr
    assert api.issue(key=out["key"]).status_code == 201

    plain = api.cli("api-keys", "create", "dialer-3", "--scope", "status")
    assert plain.exit_code == 0 and "cpk_" in plain.stdout and "status" in plain.stdout

    listed = api.cli("api-keys", "list", "--json")
    rows = json.loads(listed.stdout)
    assert {r["name"] for r in rows} == {"dialer", "dialer-2", "dialer-3"}
    secret = out["key"][len(f"cpk_{out['key_id']}_"):]  # the secret itself may hold "_"
    assert "cpk_" not in listed.stdout and secret not in listed.stdout
    table = api.cli("api-keys", "list")
    assert table.exit_code == 0 and out["key_id"] in table.stdout

    assert api.cli("api-keys", "revoke", out["key_id"]).exit_code == 0
    rows = {r["key_id"]: r for r in json.loads(api.cli("api-keys", "list", "--json").stdout)}
    assert rows[out["key_id"]]["revoked_at"] is not None
    assert rows[api.key_id]["revoked_at"] is None
    kinds = [e.type for e in api.events() if e.type.startswith("apikey.")]
    assert kinds.count("apikey.created") == 3 and kinds.count("apikey.revoked") == 1


@pytest.mark.parametrize("args", [
    ("create", "x", "--scope", "issue,admin"),
    ("create", "x", "--scope", ""),
    ("create", "   ", "--json"),
    ("revoke", "0000000000000000"),
])
def test_api_keys_errors_are_one_line_and_exit_1(api: Api, args: tuple[str, ...]) -> None:
    before = api.counts()
    result = api.cli("api-keys", *args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("callproof: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    assert api.counts() == before


def test_revoking_a_key_twice_is_an_error(api: Api) -> None:
    assert api.cli("api-keys", "revoke", api.key_id).exit_code == 0
    again = api.cli("api-keys", "revoke", api.key_id)
    assert again.exit_code == 1 and "no live API key" in again.stderr
