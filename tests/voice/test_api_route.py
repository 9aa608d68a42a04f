"""The issuer API's voice-line route for an agent: GET/PUT /api/v1/agents/<id>/voice-route."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from callproof import FixedClock, init_data_dir
from callproof.fraud import FraudDesk
from callproof.protocol import events as ev
from callproof.store.events import read_events
from verifier_app import create_app, services


@pytest.fixture
def api(tmp_path: Path, clock: FixedClock) -> Iterator[tuple[Flask, dict[str, str]]]:
    path = tmp_path / "data"
    init_data_dir(path, now=clock.now())
    app = create_app({"DATA_DIR": str(path), "TESTING": True})
    with app.app_context():
        key, _record = services().api_keys.create("ops", scopes={"agents"})
    yield app, {"Authorization": f"Bearer {key}"}
    with app.app_context():
        services().deployment.store.close()


def test_an_agents_route_is_read_and_set_through_the_api(
        api: tuple[Flask, dict[str, str]]) -> None:
    app, auth = api
    client = app.test_client()
    url = "/api/v1/agents/a-001/voice-route"
    got = client.get(url, headers=auth)
    assert got.status_code == 200
    assert got.get_json() == {"agent_id": "a-001", "transfer_target": None, "queue": None}
    put = client.put(url, headers=auth, json={"transfer_target": "sip:mei.lin@pbx.shop.example",
                                              "queue": "+886 2 2345 6700"})
    assert put.status_code == 200 and put.get_json()["queue"] == "+886223456700"
    assert client.get(url, headers=auth).get_json()["transfer_target"] == \
        "sip:mei.lin@pbx.shop.example"
    # Bad input: a clear 4xx with a JSON body, and no change.
    for body, code in (({"transfer_target": "mei lin"}, "invalid_field"),
                       ({"transfer_target": 5}, "invalid_field"),
                       ({"where": "x"}, "unknown_field"), ({}, "missing_field")):
        refused = client.put(url, headers=auth, json=body)
        assert (refused.status_code, refused.get_json()["error"]) == (422, code)
    assert client.get(url, headers=auth).get_json()["queue"] == "+886223456700"
    assert client.put("/api/v1/agents/nobody/voice-route", headers=auth,
                      json={"queue": "+886223456700"}).status_code == 404
    assert client.get("/api/v1/agents/nobody/voice-route", headers=auth).status_code == 404
    removed = client.put(url, headers=auth, json={"queue": None})
    assert removed.get_json()["queue"] is None
    assert client.get(url).status_code == 401
    assert client.delete(url, headers=auth).status_code == 405


def test_a_leaked_key_cannot_send_customers_outside_the_allowed_targets(
        api: tuple[Flask, dict[str, str]]) -> None:
    """A scammer holding an ``agents`` key cannot point an agent's transfer at their own line:
    only ``[voice] transfer_allowed`` targets can be set, and each change alerts the desk."""
    app, auth = api
    client = app.test_client()
    url = "/api/v1/agents/a-001/voice-route"
    for body in ({"transfer_target": "sip:mei.lin@scam.example"},
                 {"transfer_target": "sip:mei.lin@pbx.shop.example.scam.example"},
                 {"transfer_target": "+886912345678"},  # a mobile, not a +8862… line
                 {"queue": "+12025550123"}):
        refused = client.put(url, headers=auth, json=body)
        assert refused.status_code == 422, body
        assert refused.get_json()["error"] == "target_not_allowed"
        assert "transfer_allowed" in refused.get_json()["message"]
    assert client.get(url, headers=auth).get_json() == {
        "agent_id": "a-001", "transfer_target": None, "queue": None}
    assert client.put(url, headers=auth, json={
        "transfer_target": "sip:mei.lin@PBX.shop.example:5061"}).status_code == 200
    with app.app_context():
        dep = services().deployment
        with dep.store.read() as conn:
            got = [e for e in read_events(conn, dep.issuer_id) if e.type == ev.AGENT_ROUTE_SET]
        alerts = [a for a in FraudDesk(dep).alerts() if a.kind == "route_changed"]
    assert len(got) == 1  # the refused requests changed nothing, recorded nothing
    assert got[0].data == {"agent_id": "a-001", "transfer_target":
                           "sip:mei.lin@PBX.shop.example:5061", "queue": None}
    assert len(alerts) == 1 and alerts[0].agent_id == "a-001"
    assert alerts[0].details == {"transfer_target": "sip:mei.lin@PBX.shop.example:5061"}


def test_with_no_allowed_targets_no_route_can_be_set(
        api: tuple[Flask, dict[str, str]], tmp_path: Path) -> None:
    app, auth = api
    config = tmp_path / "data" / "config.toml"
    text = config.read_text("utf-8")
    start = text.index("transfer_allowed = [")
    config.write_text(text[:start] + "transfer_allowed = []" +
                      text[text.index("]", start) + 1:], "utf-8")
    fresh = create_app({"DATA_DIR": str(tmp_path / "data"), "TESTING": True})
    try:
        refused = fresh.test_client().put("/api/v1/agents/a-001/voice-route", headers=auth,
                                          json={"transfer_target": "+886223456700"})
        assert refused.status_code == 422
        assert refused.get_json()["error"] == "target_not_allowed"
        assert "[voice] transfer_allowed" in refused.get_json()["message"]
    finally:
        with fresh.app_context():
            services().deployment.store.close()
