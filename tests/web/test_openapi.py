"""spec/openapi.yaml: a valid OpenAPI 3.1 document that matches the app, and schemathesis against
the API in-process (bounded): no 5xx, every response as documented, a refused request changes
nothing, and every change names the API key that made it.

``check_response`` validates one test-client response against the document; test_api.py uses it
on every response it gets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from callproof import FixedClock, init_data_dir
from callproof.store import schema as tables
from callproof.store.events import read_events
from verifier_app import create_app, services

SPEC = Path(__file__).resolve().parents[2] / "spec" / "openapi.yaml"
DOC: dict[str, Any] = yaml.safe_load(SPEC.read_text("utf-8"))
PREFIX = "/api/v1"
_URI = "urn:callproof:openapi"
_REGISTRY: Registry[Any] = Registry().with_resource(
    _URI, Resource.from_contents(DOC, default_specification=DRAFT202012))


def _pointer(*parts: str) -> str:
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


Where = tuple[str, ...]


def _resolve(node: dict[str, Any], where: Where) -> tuple[dict[str, Any], Where]:
    while "$ref" in node:
        where = tuple(node["$ref"].removeprefix("#/").split("/"))
        node = DOC
        for part in where:
            node = node[part]
    return node, where


def check_response(response: TestResponse, path: str, method: str) -> Any:
    """Assert that ``response`` is one the document allows for ``method path`` (``path`` as in
    the document, e.g. ``/tickets/{ticket_id}``); return its JSON."""
    operation = DOC["paths"][path][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {path}: {status} is not documented"
    documented, where = _resolve(operation["responses"][status],
                                 ("paths", path, method.lower(), "responses", status))
    assert response.mimetype == "application/json", response.get_data(as_text=True)[:200]
    body = response.get_json()
    schema_at = _pointer(*where, "content", "application/json", "schema")
    validator = Draft202012Validator({"$ref": f"{_URI}#{schema_at}"}, registry=_REGISTRY,
                                     format_checker=FormatChecker())
    errors = [e.message for e in validator.iter_errors(body)]
    assert not errors, f"{method} {path} {status}: {errors} in {body}"
    for name in documented.get("headers", {}):
        assert name in response.headers, f"{method} {path} {status}: no {name} header"
    return body


def test_the_document_is_valid_openapi_3_1() -> None:
    assert DOC["openapi"].startswith("3.1")
    validate(DOC)  # raises on any violation of the OpenAPI 3.1 schema


def test_every_api_route_is_documented_and_every_documented_one_exists(web: Any) -> None:
    app: Flask = web.app
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and not rule.endpoint.startswith(
                ("api.not_allowed_", "api.unknown")):
            path = rule.rule.removeprefix(PREFIX).replace("<", "{").replace(">", "}")
            served |= {(path, m.lower()) for m in rule.methods or () if m not in ("HEAD",
                                                                                   "OPTIONS")}
    documented = {(p, m) for p, ops in DOC["paths"].items() for m in ops}
    assert served == documented


def test_every_operation_names_its_scope_and_documents_401_403_429() -> None:
    for path, ops in DOC["paths"].items():
        for method, op in ops.items():
            (requirement,) = op["security"]
            assert requirement["bearerKey"], f"{method} {path} names no scope"
            assert {"401", "403", "429"} <= set(op["responses"]), f"{method} {path}"


# --- schemathesis ----------------------------------------------------------------------------

FUZZ = schemathesis.openapi.from_path(SPEC)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


@dataclass
class Target:
    app: Flask
    client: FlaskClient
    headers: dict[str, str]
    key_id: str
    tickets: list[str]

    def counts(self) -> tuple[int, ...]:
        with self.app.app_context():
            with services().deployment.store.read() as conn:
                recorded = len(read_events(conn, services().deployment.issuer_id))
                return (recorded, *(conn.execute(select(func.count()).select_from(t))
                                    .scalar_one() for t in (tables.tickets, tables.customers,
                                                            tables.live_codes)))


@pytest.fixture
def target(tmp_path: Path, backend: str, clock: FixedClock) -> Iterator[Target]:
    path = tmp_path / "data"
    init_data_dir(path, now=clock.now())
    app = create_app({"DATA_DIR": str(path), "TESTING": True, "RATELIMIT_ENABLED": True,
                      "API_KEY_LIMIT": "10000 per minute",
                      "AGENT_ISSUE_LIMIT": "10000 per minute"})
    with app.app_context():
        services().deployment.clock = clock
        key, record = services().api_keys.create("fuzz", scopes={"issue", "status"})
        issuer = services().issuer
        tickets = [issuer.issue(agent_id="a-001", reason="payment_failed",
                                phone="+886912345678").ticket_id for _ in range(3)]
    yield Target(app, app.test_client(), {"Authorization": f"Bearer {key}"}, record.key_id,
                 tickets)
    with app.app_context():
        services().deployment.store.close()


@FUZZ.parametrize()
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_schemathesis_finds_no_server_error_and_only_documented_responses(
        case: Any, target: Target) -> None:
    if "ticket_id" in (case.path_parameters or {}) and len(case.path_parameters["ticket_id"]) % 2:
        # Half the time a real ticket, so that the 200 and 409 answers are exercised too.
        case.path_parameters["ticket_id"] = target.tickets[
            len(case.path_parameters["ticket_id"]) % len(target.tickets)]
    before = target.counts()
    seen = before[0]  # the events recorded so far (integrated, then queued: no worker runs here)
    response = case.call(app=target.app, headers=target.headers)
    case.validate_response(response, checks=CHECKS)
    if response.status_code >= 400 or case.method == "GET":
        assert target.counts() == before, "a refused request (or a read) changed something"
    elif case.method == "POST" and target.counts() != before:
        with target.app.app_context(), services().deployment.store.read() as conn:
            new = read_events(conn, services().deployment.issuer_id)[seen:]
        assert new and all(e.data.get("api_key") == target.key_id for e in new)


# --- the document and the API agree on what they accept (issue 13 item 14) ------------------

AGREE = schemathesis.openapi.from_path(SPEC).include(
    path_regex=r"^/(call-status|enrollments)$", method="POST")
AGREE.config.generation.update(modes=list(GenerationMode), max_examples=60, deterministic=True)


@pytest.fixture
def agreeing(tmp_path: Path, clock: FixedClock) -> Iterator[Target]:
    """One SQLite app with a key for every scope the two operations need."""
    path = tmp_path / "data"
    init_data_dir(path, now=clock.now())
    app = create_app({"DATA_DIR": str(path), "TESTING": True, "RATELIMIT_ENABLED": True,
                      "API_KEY_LIMIT": "10000 per minute"})
    with app.app_context():
        services().deployment.clock = clock
        key, record = services().api_keys.create("agree", scopes={"status", "enrol"})
    yield Target(app, app.test_client(), {"Authorization": f"Bearer {key}"}, record.key_id, [])
    with app.app_context():
        services().deployment.store.close()


@AGREE.parametrize()
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_schemathesis_valid_bodies_are_accepted_and_invalid_ones_refused(
        case: Any, agreeing: Target) -> None:
    """Bodies the document allows get 2xx; bodies it forbids (a blank or control-character
    customer_ref, `lang: null`, …) get a 4xx JSON error: the document is the API's contract."""
    response = case.call(app=agreeing.app, headers=agreeing.headers)
    case.validate_response(response, checks=[not_a_server_error, negative_data_rejection,
                                             positive_data_acceptance, *CHECKS])


@pytest.mark.parametrize("body", [
    {"customer_ref": "C-1001", "lang": None},
    {"customer_ref": "   "},
    {"customer_ref": "C-1001\n"},
    {"customer_ref": "C\u2028X"},
    {"customer_ref": "x" * 257},
])
def test_bodies_the_document_forbids_are_refused(agreeing: Target, body: dict[str, Any]) -> None:
    response = agreeing.client.post(f"{PREFIX}/call-status", json=body, headers=agreeing.headers)
    assert response.status_code == 422
    assert check_response(response, "/call-status", "POST")["error"] == "invalid_field"


def test_bodies_the_document_allows_are_taken(agreeing: Target) -> None:
    for ref in ("C-1001", " padded ", "顧客 1001", "x" * 256):
        response = agreeing.client.post(f"{PREFIX}/call-status", json={"customer_ref": ref},
                                        headers=agreeing.headers)
        assert response.status_code == 200, (ref, response.get_json())


@pytest.mark.parametrize(("path", "allow"), [
    ("/tickets", "POST, OPTIONS"),
    ("/tickets/t_abc", "GET, HEAD, OPTIONS"),
    ("/tickets/t_abc/close", "POST, OPTIONS"),
    ("/call-status", "POST, OPTIONS"),
    ("/coverage", "GET, HEAD, OPTIONS"),
    ("/enrollments", "POST, OPTIONS"),
])
def test_options_names_only_the_methods_a_path_has(web: Any, path: str, allow: str) -> None:
    response = web.client.options(PREFIX + path)
    assert response.status_code == 204
    assert response.headers["Allow"] == allow
    assert web.client.delete(PREFIX + path).headers["Allow"] == allow  # the 405 agrees
    assert web.client.options(PREFIX + "/nothing-here").status_code == 404
