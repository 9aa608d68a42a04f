"""The enrolled-proof endpoints of the issuer API: call status, coverage, enrolment tokens and
reveals, through the Flask test client on SQLite and PostgreSQL.

Every response is checked against spec/openapi.yaml (``Api.call``); a reveal's app code is
matched against a TOTP computed here, by hand, from the enrolled secret.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from werkzeug.test import TestResponse

from callproof import FixedClock
from callproof.protocol.clock import to_epoch
from verifier_app import services

from ..conftest import T0
from ..proofs.otp_by_hand import key_of
from ..proofs.otp_by_hand import totp as totp_by_hand
from .conftest import NewApp, Web
from .test_api import CALL, Api, MakeApi, api_for, refused

REF = "C-1001"
PHRASE = "blue heron at dawn"
ALL = ("issue", "status", "enrol", "reveal")


@pytest.fixture
def api(web: Web) -> Api:
    return api_for(web.app, web.path, "backend", ALL)


@pytest.fixture
def make_api(new_app: NewApp) -> MakeApi:
    return lambda **config: api_for(*new_app(**config), "backend", ALL)


def call_status(api: Api, key: str | None = None, **body: Any) -> TestResponse:
    return api.call("POST", "/call-status", key=key, json=body)


def coverage(api: Api, query: str = "?day=2026-11-23", key: str | None = None) -> TestResponse:
    return api.call("GET", "/coverage", key=key, query=query)


def enrol(api: Api, key: str | None = None, **body: Any) -> TestResponse:
    return api.call("POST", "/enrollments", key=key, json=body)


def reveal(api: Api, ticket_id: str, key: str | None = None) -> TestResponse:
    return api.call("POST", "/tickets/{ticket_id}/{action}", key=key, ticket_id=ticket_id,
                    action="reveal")


def enrol_app(api: Api, ref: str = REF) -> str:
    """Enrol and confirm an authenticator app for ``ref`` with the library; its secret."""
    with api.app.app_context():
        proofs = services().enrolled
        uri = proofs.enroll_totp(customer_ref=ref).otpauth_uri
        secret = parse_qs(urlsplit(uri).query)["secret"][0]
        now = services().deployment.now()
        proofs.confirm_totp(totp_by_hand(key_of(secret), to_epoch(now) - 30), customer_ref=ref)
    return secret


def set_phrase(api: Api, ref: str = REF) -> None:
    with api.app.app_context():
        services().enrolled.set_phrase(PHRASE, customer_ref=ref)


def connected_call(api: Api, **body: Any) -> str:
    tid: str = api.issue(**body).get_json()["ticket_id"]
    assert api.step("connected", tid).status_code == 200
    return tid


def only(api: Api, *scopes: str) -> str:
    key, _ = api.new_key(*scopes)
    return key


# --- the app call status -----------------------------------------------------------------------


def test_call_status_says_not_calling_and_writes_nothing(api: Api) -> None:
    before = api.counts()
    response = call_status(api, customer_ref="C-never-seen")
    assert response.status_code == 200
    assert response.get_json() == {"calling": False}
    assert api.counts() == before  # not even a handle for an unknown customer


def test_call_status_names_the_agent_department_and_reason_in_the_language(api: Api) -> None:
    tid = api.issue().get_json()["ticket_id"]
    body = call_status(api, customer_ref=REF).get_json()
    assert body["calling"] is True
    assert body["agent_name"] and body["reason_code"] == "payment_failed"
    assert body["started_at"] == "2026-11-23T09:30:00Z"
    english = body["reason"]
    chinese = call_status(api, customer_ref=REF, lang="zh-Hant").get_json()["reason"]
    assert chinese != english
    assert call_status(api, customer_ref="C-2002").get_json() == {"calling": False}
    api.step("close", tid)
    after = call_status(api, customer_ref=REF, lang="zh-Hant").get_json()
    assert after["calling"] is False  # and the call just closed is the last one
    assert after["last_call"]["at"] == "2026-11-23T09:30:00Z"
    assert after["last_call"]["reason"] == chinese


def test_the_customer_ref_never_travels_in_a_url(api: Api) -> None:
    response = api.client.get(f"/api/v1/call-status?customer_ref={REF}", headers=api.bearer())
    refused(api, response, 405, "method_not_allowed")


@pytest.mark.parametrize(("body", "error"), [
    ({}, "missing_field"),
    ({"customer_ref": None}, "missing_field"),
    ({"customer_ref": 1001}, "invalid_field"),
    ({"customer_ref": "   "}, "invalid_field"),
    ({"customer_ref": "x" * 300}, "invalid_field"),
    ({"customer_ref": "C\n1"}, "invalid_field"),
    ({"customer_ref": REF, "lang": "fr"}, "invalid_field"),
    ({"customer_ref": REF, "phone": "+886912345678"}, "unknown_field"),
])
def test_call_status_refuses_a_bad_body_with_422(api: Api, body: dict[str, Any],
                                                 error: str) -> None:
    refused(api, call_status(api, **body), 422, error)


def test_call_status_refuses_bodies_that_are_not_json_objects(api: Api) -> None:
    refused(api, api.call("POST", "/call-status", data="customer_ref=C-1001",
                          content_type="application/x-www-form-urlencoded"),
            415, "unsupported_media_type")
    refused(api, api.call("POST", "/call-status", data="[1]", content_type="application/json"),
            400, "invalid_json")


# --- coverage ---------------------------------------------------------------------------------


def test_coverage_counts_tickets_per_department_and_names_the_silent_ones(api: Api) -> None:
    empty = coverage(api).get_json()
    assert empty["day"] == "2026-11-23" and empty["silent"]
    assert {d["department"] for d in empty["departments"]} == set(empty["silent"])
    api.issue()
    api.issue(customer_ref="C-2")
    body = coverage(api).get_json()
    busy = [d for d in body["departments"] if d["tickets"]]
    assert len(busy) == 1 and busy[0]["tickets"] == 2 and busy[0]["agents_issuing"] == 1
    assert busy[0]["department"] not in body["silent"]
    assert all(d["tickets"] == 0 for d in coverage(api, "?day=2026-11-24").get_json()
               ["departments"])


@pytest.mark.parametrize(("query", "error"), [
    ("", "missing_field"),
    ("?day=", "invalid_field"),
    ("?day=2026-13-01", "invalid_field"),
    ("?day=23/11/2026", "invalid_field"),
    ("?day=%EF%BC%92026-11-23", "invalid_field"),
])
def test_coverage_needs_a_day(api: Api, query: str, error: str) -> None:
    refused(api, coverage(api, query), 422, error)


# --- enrolment tokens ------------------------------------------------------------------------


def test_an_enrolment_token_is_single_use_for_15_minutes_and_logged_with_the_key(
        api: Api) -> None:
    response = enrol(api, customer_ref=REF)
    assert response.status_code == 201
    body = response.get_json()
    assert body["token"].startswith("enr_")
    assert body["url"] == f"/enroll/{body['token']}"
    assert body["expires_at"] == "2026-11-23T09:45:00Z"
    made = [e for e in api.events() if e.type == "enrol.token_created"]
    assert len(made) == 1 and made[0].data["api_key"] == api.key_id
    assert REF not in repr(made[0].data) and body["token"] not in repr(made[0].data)
    # The link's page has a button (a GET uses nothing: link previews); its POST uses the link
    # once … and never again.
    for client, status in ((api.client, 303), (api.app.test_client(), 410)):
        page = client.get(body["url"]).get_data(as_text=True)
        csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        assert client.post(body["url"], data={"csrf_token": csrf}).status_code == status


@pytest.mark.parametrize(("body", "error"), [
    ({}, "missing_field"),
    ({"customer_ref": ["C-1"]}, "invalid_field"),
    ({"customer_ref": REF, "lang": "en"}, "unknown_field"),
])
def test_enrolment_refuses_a_bad_body_and_changes_nothing(api: Api, body: dict[str, Any],
                                                          error: str) -> None:
    before = api.counts()
    refused(api, enrol(api, **body), 422, error)
    assert api.counts() == before


# --- reveal -----------------------------------------------------------------------------------


def test_a_reveal_returns_the_current_app_code_and_phrase_during_a_connected_call(
        api: Api, clock: FixedClock) -> None:
    secret = enrol_app(api)
    set_phrase(api)
    clock.advance(seconds=47)
    tid = connected_call(api)
    response = reveal(api, tid)
    assert response.status_code == 200
    body = response.get_json()
    at = to_epoch(T0) + 47
    assert body["app_code"] == totp_by_hand(key_of(secret), at)  # computed here, independently
    assert body["app_code_valid_for"] == 30 - at % 30
    assert body["phrase"] == PHRASE
    kinds = {e.type: e.data for e in api.events(tid)}
    for kind in ("reveal.app_code", "reveal.phrase"):
        assert kinds[kind]["api_key"] == api.key_id
        assert body["app_code"] not in repr(kinds[kind]) and PHRASE not in repr(kinds[kind])


def test_a_phrase_only_customer_gets_only_the_phrase(api: Api) -> None:
    set_phrase(api)
    assert reveal(api, connected_call(api)).get_json() == {"phrase": PHRASE}


def test_a_reveal_before_the_call_is_connected_is_409_and_raises_an_alert(api: Api) -> None:
    enrol_app(api)
    tid = api.issue().get_json()["ticket_id"]
    body = refused(api, reveal(api, tid), 409, "not_connected")
    assert "app_code" not in body
    alerts = [e for e in api.events(tid) if e.type == "alert.reveal_unconnected"]
    assert len(alerts) == 1 and alerts[0].data["api_key"] == api.key_id
    assert alerts[0].data["allowed"] is False
    api.step("connected", tid)
    assert reveal(api, tid).status_code == 200


def test_reveals_over_the_customer_cap_are_409(api: Api) -> None:
    set_phrase(api)
    tid = connected_call(api)
    for _ in range(3):  # reveals_per_customer_hour defaults to 3
        assert reveal(api, tid).status_code == 200
    refused(api, reveal(api, tid), 409, "customer_cap")
    assert any(e.type == "alert.reveal_capped" for e in api.events(tid))


def test_reveal_refusals_name_the_librarys_reason(api: Api) -> None:
    refused(api, reveal(api, connected_call(api)), 409, "not_enrolled")
    refused(api, reveal(api, connected_call(api, customer_ref=None)), 409, "no_customer")
    set_phrase(api)
    closed = connected_call(api)
    api.step("close", closed)
    refused(api, reveal(api, closed), 409, "not_live")
    tid = connected_call(api)
    assert api.cli("customers", "forget", REF).exit_code == 0
    body = refused(api, reveal(api, tid), 409, "forgotten")
    assert PHRASE not in repr(body)


@pytest.mark.parametrize("ticket_id", ["t_doesnotexist", "bad id!", "x" * 80])
def test_a_reveal_of_an_unknown_ticket_is_404(api: Api, ticket_id: str) -> None:
    refused(api, reveal(api, ticket_id), 404, "not_found")


# --- scopes, keys and limits ------------------------------------------------------------------


def test_each_endpoint_needs_its_scope(api: Api) -> None:
    set_phrase(api)
    tid = connected_call(api)
    status_key, enrol_key, reveal_key = only(api, "status"), only(api, "enrol"), \
        only(api, "reveal")
    before = api.counts()
    for key in (enrol_key, reveal_key):
        refused(api, call_status(api, key=key, customer_ref=REF), 403, "insufficient_scope")
        refused(api, coverage(api, key=key), 403, "insufficient_scope")
    for key in (status_key, reveal_key):
        response = enrol(api, key=key, customer_ref=REF)
        refused(api, response, 403, "insufficient_scope")
        assert 'scope="enrol"' in response.headers["WWW-Authenticate"]
    for key in (status_key, enrol_key):
        refused(api, reveal(api, tid, key=key), 403, "insufficient_scope")
    assert api.counts() == before
    assert call_status(api, key=status_key, customer_ref=REF).status_code == 200
    assert coverage(api, key=status_key).status_code == 200
    assert enrol(api, key=enrol_key, customer_ref=REF).status_code == 201
    assert reveal(api, tid, key=reveal_key).status_code == 200


@pytest.mark.parametrize("header", [None, "Bearer cpk_nope_nope", "Basic abc"])
def test_no_key_or_a_bad_key_is_401_everywhere(api: Api, header: str | None) -> None:
    headers = {"Authorization": header} if header else {"Authorization": ""}
    for response in (
            api.call("POST", "/call-status", headers=headers, json={"customer_ref": REF}),
            api.call("GET", "/coverage", headers=headers, query="?day=2026-11-23"),
            api.call("POST", "/enrollments", headers=headers, json={"customer_ref": REF}),
            api.call("POST", "/tickets/{ticket_id}/{action}", headers=headers,
                     ticket_id="t_x", action="reveal")):
        refused(api, response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_per_key_limit_covers_the_new_endpoints(make_api: MakeApi) -> None:
    api = make_api(API_KEY_LIMIT="4 per minute")
    assert call_status(api, customer_ref=REF).status_code == 200
    assert coverage(api).status_code == 200
    assert enrol(api, customer_ref=REF).status_code == 201
    assert reveal(api, "t_unknown").status_code == 404
    before = api.counts()
    for response in (call_status(api, customer_ref=REF), coverage(api),
                     enrol(api, customer_ref=REF), reveal(api, "t_unknown")):
        refused(api, response, 429, "rate_limited")
        assert int(response.headers["Retry-After"]) >= 1
    assert api.counts() == before
    assert call_status(api, key=only(api, "status"), customer_ref=REF).status_code == 200


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/enrollments"),
    ("PUT", "/api/v1/call-status"),
    ("POST", "/api/v1/coverage"),
    ("GET", "/api/v1/tickets/t_x/reveal"),
])
def test_other_methods_are_405_json(api: Api, method: str, path: str) -> None:
    response = api.client.open(path, method=method, headers=api.bearer())
    refused(api, response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"] or "GET" in response.headers["Allow"]


def test_the_call_fixture_names_the_customer() -> None:
    assert CALL["customer_ref"] == REF
