"""Idempotent issuing (issue 12): ``Idempotency-Key`` on ``POST /api/v1/tickets``, on SQLite and
PostgreSQL. A dialer's retry gets the ticket it already has; never a second one for one call."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from callproof import FixedClock
from callproof.idempotency import LEASE, IdempotentIssuing, check_key
from callproof.store import schema as tables
from verifier_app import services

from .conftest import NewApp, Web
from .test_api import CALL, ISSUE, Api, MakeApi, api_for, refused

KEY = "8e03978e-40d5-43e8-bc93-6894a57f9324"


@pytest.fixture
def api(web: Web) -> Api:
    return api_for(web.app, web.path)


@pytest.fixture
def make_api(new_app: NewApp) -> MakeApi:
    return lambda **config: api_for(*new_app(**config))


def issue(api: Api, key: str | None = KEY, *, body: dict[str, Any] | None = None,
          api_key: str | None = None) -> TestResponse:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return api.call("POST", ISSUE, key=api_key, headers=headers, json=body or CALL)


def tickets(api: Api) -> int:
    with api.app.app_context(), services().deployment.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(tables.tickets)).scalar_one())


def test_a_retry_with_the_same_key_and_body_gets_the_same_response(api: Api) -> None:
    first = issue(api)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    before = api.counts()
    again = issue(api)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()  # code and signed ticket included
    assert again.headers["Location"] == first.headers["Location"]
    assert api.counts() == before  # no ticket, event, code or customer added
    # The same body in another order and spacing is the same request (canonical JSON).
    reordered = api.client.post("/api/v1/tickets", headers={**api.bearer(),
                                                            "Idempotency-Key": f'"{KEY}"',
                                                            "Content-Type": "application/json"},
                                data=" {\n" + ", ".join(f'"{k}" : "{v}"' for k, v in
                                                        reversed(CALL.items())) + "}")
    assert reordered.status_code == 201 and reordered.get_json() == first.get_json()
    assert tickets(api) == 1


def test_the_same_key_with_another_body_is_422_and_changes_nothing(api: Api) -> None:
    first = issue(api)
    before = api.counts()
    other = issue(api, body={**CALL, "phone": "+886912000000"})
    refused(api, other, 422, "idempotency_key_reused")
    assert api.counts() == before
    assert issue(api).get_json() == first.get_json()  # the key still holds its ticket


def test_keys_belong_to_one_api_key_and_last_24_hours(api: Api, clock: FixedClock) -> None:
    first = issue(api).get_json()
    other_key, _ = api.new_key("issue", "status")
    second = issue(api, api_key=other_key).get_json()
    assert second["ticket_id"] != first["ticket_id"]
    clock.advance(seconds=23 * 3600 + 59 * 60)
    assert issue(api).get_json()["ticket_id"] == first["ticket_id"]
    clock.advance(seconds=120)
    assert issue(api).get_json()["ticket_id"] not in (first["ticket_id"], second["ticket_id"])
    # and, a day on, the key may even carry another body
    clock.advance(seconds=25 * 3600)
    assert issue(api, body={**CALL, "reason": "order_delivery"}).status_code == 201


def test_without_a_key_every_request_is_a_new_ticket(api: Api) -> None:
    assert issue(api, None).get_json() != issue(api, None).get_json()
    assert tickets(api) == 2


def test_a_refused_request_leaves_the_key_free(api: Api) -> None:
    before = api.counts()
    refused(api, issue(api, body={**CALL, "agent_id": "a-999"}), 422, "unknown_agent")
    assert api.counts() == before
    fixed = issue(api)  # the corrected request under the same key runs
    assert fixed.status_code == 201 and "Idempotent-Replayed" not in fixed.headers


@pytest.mark.parametrize("value", ["", " ", '"', '""', "a\\b", 'a"b', "a,b", "x" * 256,
                                   "caf\u00e9"])
def test_a_malformed_key_is_400(api: Api, value: str) -> None:
    before = api.counts()
    response = api.client.post("/api/v1/tickets", json=CALL,
                               headers={**api.bearer(), "Idempotency-Key": value})
    refused(api, response, 400, "bad_idempotency_key")
    assert api.counts() == before


def test_two_key_headers_are_400(api: Api) -> None:
    response = api.client.post("/api/v1/tickets", json=CALL, headers=[
        ("Authorization", f"Bearer {api.key}"), ("Idempotency-Key", "a"),
        ("Idempotency-Key", "b")])
    refused(api, response, 400, "bad_idempotency_key")
    assert tickets(api) == 0


def test_the_key_forms() -> None:
    assert check_key(f'"{KEY}"') == KEY == check_key(f" {KEY} ")
    assert check_key('"two words"') == "two words"


def test_concurrent_requests_with_one_key_make_one_ticket(api: Api) -> None:
    n = 6
    barrier = threading.Barrier(n)
    answers: list[tuple[int, Any]] = []
    errors: list[BaseException] = []

    def dialer() -> None:
        client = api.app.test_client()
        try:
            barrier.wait(timeout=30)
            response = client.post("/api/v1/tickets", json=CALL,
                                   headers={**api.bearer(), "Idempotency-Key": KEY})
            answers.append((response.status_code, response.get_json()))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=dialer) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(answers) == n
    assert {status for status, _ in answers} == {201}, answers
    assert len({body["ticket_id"] for _, body in answers}) == 1
    assert len({body["code"] for _, body in answers}) == 1
    assert tickets(api) == 1


def test_an_older_releases_reservation_is_waited_on_then_taken_over_after_the_lease(
        api: Api, clock: FixedClock) -> None:
    """A row without its ticket (an older release reserved keys in a transaction of their own,
    and its process died here) is in progress until its lease ends, then a retry issues."""
    with api.app.app_context():
        dep = services().deployment
        issuing = IdempotentIssuing(services().issuer)
        now = int(clock.now().timestamp())
        with dep.store.write() as conn:
            conn.execute(tables.idempotency_keys.insert().values(
                key_hash=issuing._key_hash(api.key_id, KEY), issuer_id=dep.issuer_id,
                api_key=api.key_id, request_hash=_request_hash(CALL), attempt="old",
                ticket_id=None, sealed_code=None, created_at=now, lease_until=now + LEASE,
                expires_at=now + 24 * 3600))
    busy = issue(api)
    refused(api, busy, 409, "idempotency_key_in_progress")
    assert busy.headers["Retry-After"] == "1"
    assert tickets(api) == 0
    clock.advance(seconds=LEASE + 1)
    first = issue(api)
    assert first.status_code == 201 and tickets(api) == 1
    assert issue(api).get_json() == first.get_json()


def test_the_key_is_kept_in_the_tickets_own_transaction(api: Api) -> None:
    """A failure after the ticket's rows are written and before its commit (a crash, a lost
    connection) leaves neither the ticket nor its key: the retry issues at once, once."""
    before = api.counts()
    seen: list[str] = []

    class DiesBeforeCommit(IdempotentIssuing):
        def _record(self, conn: Any, *args: Any) -> None:
            super()._record(conn, *args)
            seen.append(args[-1].ticket_id)
            raise ConnectionError("the process died before the commit")

    with api.app.app_context():
        issuing = DiesBeforeCommit(services().issuer)
        call: dict[str, Any] = dict(CALL)
        with pytest.raises(ConnectionError):
            issuing.issue(KEY, api_key=api.key_id, request=CALL, **call)
        assert len(seen) == 1  # the key's row was written in the ticket's transaction ...
    assert api.counts() == before
    with api.app.app_context(), services().deployment.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(
            tables.idempotency_keys)).scalar_one() == 0  # ... and went with it
    assert tickets(api) == 0
    first = issue(api)  # no lease to wait for
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    assert first.get_json()["ticket_id"] != seen[0]
    assert issue(api).get_json() == first.get_json() and tickets(api) == 1


def test_the_table_keeps_no_key_and_no_code_in_clear_and_is_purged(
        api: Api, clock: FixedClock) -> None:
    body = issue(api).get_json()
    with api.app.app_context():
        dep = services().deployment
        with dep.store.read() as conn:
            [row] = conn.execute(select(tables.idempotency_keys)).all()
        assert row.ticket_id == body["ticket_id"] and row.api_key == api.key_id
        assert KEY not in repr(tuple(row)) and body["code"].encode() not in row.sealed_code
        assert body["code"] not in repr(tuple(row))
        issuing = IdempotentIssuing(services().issuer)
        assert issuing.purge_expired() == 0
        clock.advance(seconds=24 * 3600)
        assert issuing.purge_expired() == 1
        with dep.store.read() as conn:
            assert conn.execute(select(func.count()).select_from(
                tables.idempotency_keys)).scalar_one() == 0


def test_the_api_key_limit_still_counts_retries(make_api: MakeApi) -> None:
    api = make_api(API_KEY_LIMIT="2 per minute")
    assert issue(api).status_code == 201
    assert issue(api).status_code == 201
    refused(api, issue(api), 429, "rate_limited")


def _request_hash(body: dict[str, Any]) -> str:
    import hashlib

    from callproof.protocol.canonical import canonical_json
    from callproof.protocol.jws import b64url_encode

    return b64url_encode(hashlib.sha256(canonical_json(body)).digest())

