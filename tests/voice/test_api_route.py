"""The issuer API's voice-line route for an agent: GET/PUT /api/v1/agents/<id>/voice-route."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from callproof import FixedClock, init_data_dir
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
