"""The agent registry through the issuer API (experience issue 14 item 3): names and
departments per language, checked against spec/openapi.yaml on every answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from callproof.protocol import events

from .test_api import Api, api_for
from .test_openapi import check_response

AGENTS = "/agents"
ONE = "/agents/{agent_id}"


@pytest.fixture
def registry(new_app: object) -> Api:
    app, path = new_app()  # type: ignore[operator]
    assert isinstance(app, Flask) and isinstance(path, Path)
    return api_for(app, path, "operators", scopes=("agents",))


def _send(api: Api, method: str, template: str, *, key: str | None = None,
          agent_id: str | None = None, json: object = None) -> Any:
    """A request to ``template`` (with ``agent_id`` in the path), its answer checked against
    the OpenAPI document."""
    url = "/api/v1" + (template.format(agent_id=agent_id) if agent_id else template)
    response = api.client.open(url, method=method, headers=api.bearer(key), json=json)
    check_response(response, template, method)
    return response


def _agent(api: Api, agent_id: str) -> dict[str, object]:
    listed = _send(api, "GET", AGENTS).get_json()["agents"]
    (found,) = [a for a in listed if a["id"] == agent_id]
    return dict(found)


def test_add_an_agent_with_names_per_language_and_change_them(registry: Api) -> None:
    api = registry
    response = _send(api, "POST", AGENTS, json={
        "agent_id": "a-017", "name": "Mei Lin", "names": {"zh-Hant": "林美玲", "zh-Hans": "林美玲"},
        "department": "Customer Care", "department_names": {"zh-Hant": "客服部"}})
    assert response.status_code == 201
    assert response.get_json() == {
        "id": "a-017", "name": "Mei Lin", "department": "Customer Care", "enabled": True,
        "names": {"zh-Hant": "林美玲", "zh-Hans": "林美玲"},
        "department_names": {"zh-Hant": "客服部"}}
    changed = _send(api, "PATCH", ONE, agent_id="a-017",
                    json={"department_names": {"zh-Hans": "客服中心"}, "names": {"zh-Hans": ""}})
    assert changed.status_code == 200
    assert changed.get_json()["department_names"] == {"zh-Hant": "客服部", "zh-Hans": "客服中心"}
    assert changed.get_json()["names"] == {"zh-Hant": "林美玲"}
    assert _agent(api, "a-017") == changed.get_json()
    logged = [e for e in api.events() if e.type in (events.AGENT_ADDED, events.AGENT_CHANGED)
              and e.data["agent_id"] == "a-017"]
    assert [e.data["api_key"] for e in logged] == [api.key_id, api.key_id]


@pytest.mark.parametrize(("method", "path", "body", "status", "error"), [
    ("POST", AGENTS, {"agent_id": "a-001", "name": "Again"}, 409, "agent_exists"),
    ("POST", AGENTS, {"agent_id": "a-020"}, 422, "missing_field"),
    ("POST", AGENTS, {"agent_id": "a-020", "name": "X", "names": {"fr": "X"}}, 422,
     "invalid_field"),
    ("POST", AGENTS, {"agent_id": "a-020", "name": "X\n"}, 422, "invalid_field"),
    ("POST", AGENTS, {"agent_id": "a-020", "name": "X", "colour": "red"}, 422, "unknown_field"),
    ("POST", AGENTS, {"agent_id": "a-020", "name": "X", "department_names": {"zh-Hant": "客服"}},
     422, "invalid_field"),
    ("PATCH", "/agents/a-404", {"name": "X"}, 404, "not_found"),
    ("PATCH", "/agents/a*404", {"colour": "red"}, 404, "not_found"),
    ("PATCH", "/agents/a-001", {}, 422, "missing_field"),
    ("PATCH", "/agents/a-001", {"name": ""}, 422, "invalid_field"),
], ids=["exists", "no-name", "unknown-language", "unprintable", "unknown-member",
        "department-names-without-department", "unknown-agent",
        "impossible-id-before-the-body", "nothing-to-change",
        "empty-name"])
def test_bad_requests_are_refused_and_change_nothing(
        registry: Api, method: str, path: str, body: dict[str, object], status: int,
        error: str) -> None:
    before = registry.counts(), _agent(registry, "a-001")
    template = ONE if path.startswith("/agents/") else AGENTS
    agent_id = path.rsplit("/", 1)[1] if template == ONE else None
    response = _send(registry, method, template, json=body, agent_id=agent_id)
    assert response.status_code == status and response.get_json()["error"] == error
    assert (registry.counts(), _agent(registry, "a-001")) == before


def test_the_registry_needs_the_agents_scope(registry: Api) -> None:
    key, _ = registry.new_key("issue", "status", "enrol", "reveal")
    for method, template, agent_id in (("GET", AGENTS, None), ("POST", AGENTS, None),
                                       ("PATCH", ONE, "a-001")):
        response = _send(registry, method, template, key=key, agent_id=agent_id,
                         json=None if method == "GET" else {"name": "X"})
        assert response.status_code == 403
        assert response.get_json()["error"] == "insufficient_scope"
