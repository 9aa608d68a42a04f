"""Scenario 12 — a leaked API key.

The dialer's API key (scopes ``issue`` and ``status``) ends up in a public code repository. A
scammer finds it. With it he can mint genuine tickets for calls to his victims and read their
check words — for as long as it works, as good as the company. He also tries for more: the
customers' app codes and call phrases (``reveal``) and enrolment links (``enrol``).

The mechanism: keys are scoped — a key without ``reveal`` gets 403 ``insufficient_scope`` and
nothing is revealed or recorded; every server looks the key up on every request, so
``callproof api-keys revoke KEY_ID`` on the data dir stops it at the next request (401) while
the company's other keys keep working; and the event record names the key (its id, never the
secret) on every ticket it issued and every change it made, so the company can list and revoke
exactly the tickets the thief minted.

What the tests show, over HTTP against the served instance: the 403s; the revocation through the
real command line while the server runs; the log's account of the key's doings, used to
withdraw its live tickets so that the victim's check page refuses them.

Residual risk: until the key is revoked the thief issues genuine tickets and reads check words
(reads are not logged: the record shows which tickets the key issued and changed, not which it
read); revoking the key does not withdraw the tickets it already issued — the operator does that
from the record, as here, or they live out their 15 minutes.
"""

from __future__ import annotations

import json

import requests
from click.testing import CliRunner, Result

from callproof._cli import cli

from .conftest import Dialer, Instance

VICTIM_PHONE = "+886912340427"


def _cli(instance: Instance, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(instance.path), *args])


def _key_id(dialer: Dialer) -> str:
    return dialer.key.removeprefix("cpk_").split("_", 1)[0]


def _counts(instance: Instance) -> tuple[int, int]:
    events = instance.events()
    return len(events), sum(e.type == "ticket.issued" for e in events)


def test_a_key_without_the_reveal_scope_reveals_nothing_and_changes_nothing(
        instance: Instance) -> None:
    leaked = instance.dialer(name="dialer")  # issue, status
    instance.services().enrolled.set_phrase("blue kettle on stair", customer_ref="C-1")
    call = leaked.issue(customer_ref="C-1", phone=VICTIM_PHONE)
    assert leaked.connected(call["ticket_id"]).status_code == 200  # as if the call were live
    before = _counts(instance)

    for method, path, body in (("POST", f"/tickets/{call['ticket_id']}/reveal", None),
                               ("POST", "/enrollments", {"customer_ref": "C-1"})):
        refused = leaked.call(method, path, body)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "insufficient_scope"
        assert "insufficient_scope" in refused.headers["WWW-Authenticate"]
        assert "phrase" not in refused.text and "token" not in refused.json()
    assert _counts(instance) == before, "a refused request leaves no trace and changes nothing"
    assert not [e for e in instance.events() if e.type.startswith(("reveal.", "enrol.token"))]


def test_a_revoked_key_is_refused_at_once_by_the_running_server(instance: Instance) -> None:
    leaked = instance.dialer(name="dialer")
    other = instance.dialer(name="crm")
    issued = leaked.issue(phone=VICTIM_PHONE)

    listed = json.loads(_cli(instance, "api-keys", "list", "--json").stdout)
    assert {k["name"] for k in listed} == {"dialer", "crm"}
    assert all(leaked.key not in json.dumps(k) for k in listed), "the list never shows a key"
    revoked = _cli(instance, "api-keys", "revoke", _key_id(leaked))
    assert revoked.exit_code == 0 and revoked.stdout.strip() == \
        f"revoked API key {_key_id(leaked)}"

    for method, path in (("POST", "/tickets"), ("GET", f"/tickets/{issued['ticket_id']}"),
                         ("POST", f"/tickets/{issued['ticket_id']}/close")):
        body = {"agent_id": "a-001", "reason": "payment_failed"} if path == "/tickets" else None
        response = leaked.call(method, path, body)
        assert response.status_code == 401, response.text
        assert response.json() == {"error": "unauthorized",
                                   "message": "The API key is unknown or revoked."}
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    # The company's other key is untouched; revoking twice says so plainly.
    assert other.issue()["ticket_id"]
    again = _cli(instance, "api-keys", "revoke", _key_id(leaked))
    assert again.exit_code == 1 and f"no live API key '{_key_id(leaked)}'" in again.output
    [entry] = [k for k in json.loads(_cli(instance, "api-keys", "list", "--json").stdout)
               if k["key_id"] == _key_id(leaked)]
    assert entry["revoked_at"]


def test_the_log_shows_what_the_leaked_key_did_and_its_live_tickets_can_be_withdrawn(
        instance: Instance) -> None:
    leaked = instance.dialer(name="dialer")
    company = instance.dialer(name="crm")
    genuine = company.issue()
    minted = [leaked.issue(phone=VICTIM_PHONE) for _ in range(2)]
    leaked.connected(minted[0]["ticket_id"])
    # The scammer reads the check word of his minted call once the victim confirms the number.
    victim = instance.customer()
    assert victim.type_code(minted[0]["code_display"]).kind == "number"
    assert victim.answer_number(yes=True).kind == "word"
    word = leaked.check_word(minted[0]["ticket_id"])

    assert _cli(instance, "api-keys", "revoke", _key_id(leaked)).exit_code == 0
    # The record: every event the leaked key caused names it (by id; the secret is nowhere).
    events = instance.events()
    by_key = [(e.type, e.data.get("ticket_id")) for e in events
              if e.data.get("api_key") == _key_id(leaked)]
    assert by_key == [("ticket.issued", minted[0]["ticket_id"]),
                      ("ticket.issued", minted[1]["ticket_id"]),
                      ("ticket.connected", minted[0]["ticket_id"])]
    assert ("apikey.revoked", _key_id(leaked)) in [(e.type, e.data.get("key_id")) for e in events]
    assert all(leaked.key.split("_", 2)[2] not in json.dumps(e.data) for e in events)
    genuine_issue = [e for e in events if e.data.get("ticket_id") == genuine["ticket_id"]]
    assert genuine_issue[0].data["api_key"] == _key_id(company)

    # The operator withdraws exactly the tickets the record attributes to the leaked key, with
    # the company's own key (the same as `callproof tickets revoke TICKET_ID` on the data dir).
    for ticket_id in {t for kind, t in by_key if kind == "ticket.issued"}:
        withdrawn = company.call("POST", f"/tickets/{ticket_id}/revoke")
        assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "revoked"
    # The victim taps the word the scammer reads out: the withdrawn call no longer confirms.
    assert victim.tap_word(word).kind == "failed"
    late = instance.customer().type_code(minted[1]["code_display"])
    assert late.kind == "failed" and "We cannot confirm this call." in late.visible_text()
    # The company's own call is unaffected.
    assert instance.customer().type_code(genuine["code_display"]).kind == "number"


def test_a_request_without_a_bearer_key_is_told_how_to_authenticate(instance: Instance) -> None:
    response = requests.post(f"{instance.url}/api/v1/tickets", timeout=30,
                             json={"agent_id": "a-001", "reason": "payment_failed"})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="callproof"'
