"""Scenario 14 — bad input everywhere.

Scammers, bots and confused people type anything into anything: letters and emoji in the call
code box, full-width digits from a Chinese keyboard, a whole pasted text message, a ticket id
edited in the address bar, a 200 KB body, a form without its CSRF token, a script that walks the
issuer API with every malformed request it can think of. A crash, a 500 page or a stack trace
would frighten an elderly customer and might leak something; a request that is refused but
changes something anyway would let a bot wear the system down.

The mechanism: every input is checked at the edge before the library is asked — the code box
normalises what people type (NFKC, spaces and dashes) and refuses anything else with a plain
sentence, before any lookup; the check steps accept only a ticket this browser claimed; bodies
over 16 KiB are refused unread; the API answers every refusal with a documented JSON error.

What "no state change" means here, precisely: the state is the event record, the tickets (and
their states), the code links, customers, enrolment tokens, scam reports, the failed-lookup
counters (global, per minute, and per client) and the breaker. A *rejected* input — any 4xx on
the public pages, any API refusal — leaves all of it exactly as it was. A well-formed code that
matches no live call is not rejected input but a *failed lookup*: by design it adds exactly one
to the failed-lookup counter (that is how guessing is limited, scenario 4) and changes nothing
else — no event (the minute's count is logged later as one ``lookups.failed``), no ticket.

The tests play it against a served instance over HTTP: schemathesis walks the issuer API from
spec/openapi.yaml at the live base URL (as tests/web/test_openapi.py does in-process), and
hypothesis drives the public forms. The coverage-guided fuzzers (atheris) on ticket parsing, code
normalisation, the note/checkpoint parser and the bundle reader live in ``fuzz/`` (run with
``python fuzz/run.py``); their kept corpus is replayed by ``tests/test_fuzz_corpus.py``.

Residual risk: the fuzzing is bounded (tens of examples per property here, minutes per target in
CI), so it shows the absence of the bugs it looked for, not of all bugs.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import func, select

from callproof.errors import CodeError
from callproof.protocol.codes import damm_digit, normalise_code
from callproof.scam_reports import MAX_TEXT
from callproof.store import schema as tables
from callproof.store.events import read_events

from .conftest import Customer, Instance

SPEC = Path(__file__).resolve().parents[2] / "spec" / "openapi.yaml"
FUZZ = schemathesis.openapi.from_path(SPEC)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
#: Generous limits, so the properties reach the checks behind the limiters (which have their
#: own scenarios); the library's global budget stays at its default and is never reached.
ROOMY = {"API_KEY_LIMIT": "100000 per minute",
         "AGENT_ISSUE_LIMIT": "100000 per minute"}
#: The library's own per-address and per-network counts, as roomy (its customers all come from
#: one network: tests/scenarios/conftest.py new_address).
ROOMY_LIMITS = {"client_failure_limit": 100_000, "network_failure_limit": 100_000}
EXAMPLES = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))

CODE_FORMAT = "Type the 9 digits of the call code. Use digits only."
CODE_TYPO = "One digit of the call code is not right. Check the code and type it again."
TOO_LARGE = "That was far more than a call code. Type the 9 digits only."
STALE_FORM = "This page was open too long. Type the call code again."


def state(instance: Instance) -> dict[str, Any]:
    """Everything a request could change (see the module's docstring)."""
    t = tables
    dep = instance.services().deployment

    def count(table: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def total(column: Any) -> int:
        return int(conn.execute(select(func.coalesce(func.sum(column), 0))).scalar_one())

    with dep.store.read() as conn:
        return {
            # integrated and still queued (integrating moves them, the sum stays)
            "events": count(t.events) + count(t.event_queue),
            "tickets": conn.execute(select(t.tickets.c.ticket_id, t.tickets.c.state,
                                           t.tickets.c.claimed_by)
                                    .order_by(t.tickets.c.ticket_id)).all(),
            "live_codes": count(t.live_codes), "customers": count(t.customers),
            "enrollment_tokens": count(t.enrollment_tokens),
            "reports": count(t.scam_reports),
            "failed_lookups": total(t.failed_lookups.c.count),
            "client_failures": total(t.client_failures.c.count),
            "breaker": conn.execute(select(t.breaker)).all(),
        }


def failed_lookup_added(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Exactly one more failed lookup — for the deployment, and for the client's address and its
    network (spec §10) — and nothing else changed."""
    return after == {**before, "failed_lookups": before["failed_lookups"] + 1,
                     "client_failures": before["client_failures"] + 2}


@dataclass
class Stage:
    """The served instance with what the properties need: a live call nobody has checked, a
    live call its customer is checking, and the dialer's key."""

    instance: Instance
    unchecked: dict[str, Any]
    checking: dict[str, Any]
    key: str
    phone: Customer | None = None  # the unchecked call's customer, once she types its code


@pytest.fixture
def stage(serve: Any) -> Stage:
    instance = serve(limits=ROOMY_LIMITS, **ROOMY)
    dialer = instance.dialer()
    unchecked, checking = dialer.issue(), dialer.issue()
    assert instance.customer().type_code(checking["code_display"]).kind == "number"
    return Stage(instance, unchecked, checking, dialer.key)


# --- the public forms ------------------------------------------------------------------------

_FULL = str.maketrans("0123456789", "０１２３４５６７８９")
codes_people_type = st.one_of(
    st.text(max_size=80),
    st.text(alphabet="0123456789０１２３４５６７８９ -.－。", max_size=20),
    st.from_regex(r"[0-9]{8}", fullmatch=True).map(lambda d: d + damm_digit(d)),
    st.from_regex(r"[0-9]{9}", fullmatch=True).map(lambda d: d.translate(_FULL)),
    st.text(min_size=65, max_size=5000),
)


@given(typed=codes_people_type)
@EXAMPLES
def test_anything_typed_into_the_code_box_gets_a_plain_answer_and_changes_only_a_counter(
        stage: Stage, typed: str) -> None:
    served = stage.instance
    try:
        normalised: str | None = normalise_code(typed)
    except CodeError:
        normalised = None
    assume(normalised not in (stage.unchecked["code"], stage.checking["code"]))
    customer = served.customer()
    customer.open()
    before = state(served)
    page = customer.post("/verify", {"code": typed})
    assert page.status < 500
    words = page.visible_text()
    if len(typed) > 64 or normalised is None:
        assert page.status == 400 and page.kind == "index"
        assert CODE_FORMAT in words or CODE_TYPO in words
        assert state(served) == before, "a refused code changes nothing"
    else:
        assert page.status == 200 and page.kind == "failed"
        assert "We cannot confirm this call." in words
        assert failed_lookup_added(before, state(served))
    if len(typed.strip()) >= 10:
        assert html.escape(typed) not in page.text, "what was typed is never echoed back"


digit_forms = st.lists(st.booleans(), min_size=9, max_size=9)
separators = st.sampled_from(["", " ", "-", ".", "－", "　", " - ", "。"])


@given(fullwidth=digit_forms, first=separators, second=separators, pad=st.booleans())
@EXAMPLES
def test_a_genuine_code_reaches_its_call_in_every_form_people_type_it(
        stage: Stage, fullwidth: list[bool], first: str, second: str, pad: bool) -> None:
    """The customer's own phone, typing the code again and again in every accepted form: each
    reaches the same call (the same browser is shown where it is; nothing is counted)."""
    if stage.phone is None:
        stage.phone = stage.instance.customer()
    customer = stage.phone
    digits = [d.translate(_FULL) if wide else d
              for d, wide in zip(stage.unchecked["code"], fullwidth, strict=True)]
    typed = "".join(digits[:3]) + first + "".join(digits[3:6]) + second + "".join(digits[6:])
    page = customer.type_code(f"  {typed} " if pad else typed)
    assert page.status == 200 and page.kind == "number", page.visible_text()[:200]
    assert state(stage.instance)["failed_lookups"] == 0


ticket_ids = st.one_of(st.text(max_size=100), st.from_regex(r"[A-Za-z0-9_-]{1,64}",
                                                            fullmatch=True),
                       st.just(""), st.text(min_size=65, max_size=3000))


@given(ticket_id=ticket_ids, where=st.sampled_from(["number", "word", "step"]),
       answer=st.one_of(st.sampled_from(["yes", "no"]), st.text(max_size=70)))
@EXAMPLES
def test_malformed_ticket_ids_and_answers_get_the_safe_page_and_change_nothing(
        stage: Stage, ticket_id: str, where: str, answer: str) -> None:
    served = stage.instance
    customer = served.customer()
    customer.open()
    before = state(served)
    if where == "step":
        page = customer.open(f"/verify/step?t={quote(ticket_id)}")
    elif where == "number":
        page = customer.post("/verify/number", {"t": ticket_id, "answer": answer})
    else:
        page = customer.post("/verify/word", {"t": ticket_id, "word": answer})
    assert page.status in (200, 400, 413), page.status
    assert page.kind in ("failed", "index")
    assert state(served) == before, "only a browser that claimed a ticket can move it"
    # Not even a stranger who knows the genuine ticket's id can answer for its customer.
    stranger = customer.post("/verify/number", {"t": stage.checking["ticket_id"],
                                                "answer": "no"})
    assert stranger.kind == "failed" and state(served) == before


@given(size=st.integers(min_value=17 * 1024, max_value=400 * 1024),
       where=st.sampled_from(["/verify", "/report", "/verify/number", "/api/v1/tickets"]))
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_oversized_bodies_are_refused_unread_with_a_clear_answer(
        stage: Stage, size: int, where: str) -> None:
    served = stage.instance
    customer = served.customer()
    customer.open()
    before = state(served)
    if where.startswith("/api/"):
        response = requests.post(served.url + where, data=b"{" + b" " * size + b"}",
                                 timeout=30, headers={"Content-Type": "application/json",
                                                      "Authorization": f"Bearer {stage.key}"})
        assert response.status_code == 413 and response.json()["error"] == "too_large"
    else:
        page = customer.post(where, {"code": "1" * size, "t": "x", "text": "x"})
        assert page.status == 413 and TOO_LARGE in page.visible_text()
    assert state(served) == before


@given(number=st.one_of(st.none(), st.text(max_size=40), st.sampled_from(
           ["+886 2 2345 6789", "0223456789", "+886223456789", "+1 (555) 0100"])),
       text=st.one_of(st.none(), st.text(max_size=MAX_TEXT + 80)),
       scripts=st.lists(st.one_of(st.sampled_from(["refund", "screen_sharing"]),
                                  st.text(max_size=20)), max_size=4))
@EXAMPLES
def test_a_bad_report_is_refused_with_a_sentence_and_nothing_is_stored(
        stage: Stage, number: str | None, text: str | None, scripts: list[str]) -> None:
    served = stage.instance
    customer = served.customer()
    customer.open("/verify/failed")
    before = state(served)
    data: dict[str, Any] = {"asked": scripts}
    if number is not None:
        data["number"] = number
    if text is not None:
        data["text"] = text
    page = customer.post("/report", data)
    after = state(served)
    assert page.status in (200, 400)
    if page.status == 400:
        words = page.visible_text()
        assert "That phone number does not look right." in words or \
            f"Please write at most {MAX_TEXT} characters." in words
        assert after == before
    else:
        assert "Thank you for telling us." in page.visible_text()
        assert after == {**before, "reports": before["reports"] + 1,
                         "events": before["events"] + 1}, "one report, one report.filed"
    if text is not None and len(text.strip()) > MAX_TEXT:
        assert page.status == 400


def test_forms_without_their_csrf_token_are_refused_and_change_nothing(stage: Stage) -> None:
    served, call = stage.instance, stage.unchecked
    customer = served.customer()
    before = state(served)
    for path, data in (("/verify", {"code": call["code_display"]}),
                       ("/report", {"asked": ["refund"], "text": "x"}),
                       ("/verify", {"code": call["code_display"], "csrf_token": "forged"})):
        response = customer.http.post(served.url + path, data=data, timeout=30)
        assert response.status_code == 400
        page = customer._keep(response)
        assert STALE_FORM in page.visible_text()
    assert state(served) == before, "the real code was not even looked up"


# --- the issuer API, from its OpenAPI document, at the served URL ---------------------------


@pytest.fixture
def api(stage: Stage) -> Iterator[tuple[Instance, dict[str, str], str, list[str]]]:
    served = stage.instance
    dialer = served.dialer(scopes=("issue", "status", "enrol", "reveal"), name="fuzz")
    key_id = dialer.key.removeprefix("cpk_").split("_", 1)[0]
    tickets = [dialer.issue()["ticket_id"] for _ in range(3)]
    yield served, {"Authorization": f"Bearer {dialer.key}"}, key_id, tickets


#: Every operation of the document, with valid and with invalid requests (schemathesis's
#: positive and negative generation), drawn in one stream against one served instance.
API_CASES = st.one_of(FUZZ.as_strategy(GenerationMode.POSITIVE),
                      FUZZ.as_strategy(GenerationMode.NEGATIVE))


@given(case=API_CASES)
@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_schemathesis_on_the_served_api_finds_no_5xx_and_refusals_change_nothing(
        case: Any, api: tuple[Instance, dict[str, str], str, list[str]]) -> None:
    served, headers, key_id, tickets = api
    if "ticket_id" in (case.path_parameters or {}) and len(case.path_parameters["ticket_id"]) % 2:
        # Half the time a real ticket, so that the 200 and 409 answers are exercised too.
        case.path_parameters["ticket_id"] = tickets[len(case.path_parameters["ticket_id"]) % 3]
    before = state(served)
    response = case.call(base_url=f"{served.url}/api/v1", headers=headers, timeout=30)
    case.validate_response(response, checks=CHECKS)
    after = state(served)
    if response.status_code >= 400 or case.method == "GET":
        assert after == before, "a refused request (or a read) changed something"
    elif after["events"] != before["events"]:
        dep = served.services().deployment
        with dep.store.read() as conn:
            new = read_events(conn, dep.issuer_id)[before["events"]:]
        assert all(e.data.get("api_key") == key_id for e in new), \
            "every change names the key that made it"


# --- PostgreSQL refuses what SQLite stores -------------------------------------------------


@pytest.mark.postgres
def test_a_nul_character_in_a_form_gets_a_plain_answer_on_postgresql_too(
        serve: Any, pg_url: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A NUL (U+0000) pasted into a form is valid form data and SQLite stores it, but
    PostgreSQL refuses it in a text column. It must be refused at the edge like any other bad
    input — not reach the database, be lost, and be logged as "the database is unavailable"
    (a false outage alarm), nor answer the console with a 503."""
    monkeypatch.setenv("CALLPROOF_DATABASE_URL", pg_url)
    served = serve(limits=ROOMY_LIMITS, **ROOMY)
    served.services().passwords.set("a-001", "a long scenario password")
    customer = served.customer()
    customer.open("/verify/failed")
    report = customer.post("/report", {"asked": ["refund"], "text": "he said\x00refund"})
    assert report.status == 400 or "Thank you for telling us." in report.visible_text(), \
        "the report was neither refused with a sentence nor stored"
    sign_in = requests.Session()
    page = sign_in.get(f"{served.url}/console/sign-in", timeout=30).text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = sign_in.post(f"{served.url}/console/sign-in", timeout=30, data={
        "csrf_token": token, "agent_id": "a-001\x00", "password": "x"})
    assert answer.status_code < 500
    step = customer.post("/verify/number", {"t": "t_\x00", "answer": "yes"})
    assert step.kind == "failed"
    assert "the database is unavailable" not in caplog.text
