"""The issuer API for call-center software: JSON over HTTPS with bearer keys (spec/openapi.yaml).

POST /api/v1/tickets                          issue a ticket for a call placed now  (scope issue)
GET  /api/v1/tickets/<ticket_id>              the agent's view: state, check word   (scope status)
POST /api/v1/tickets/<ticket_id>/connected    the customer picked up                (scope issue)
POST /api/v1/tickets/<ticket_id>/close        the call was hung up                  (scope issue)
POST /api/v1/tickets/<ticket_id>/revoke       withdraw a ticket                     (scope issue)
POST /api/v1/tickets/<ticket_id>/reveal       the customer's app code / phrase     (scope reveal)
POST /api/v1/call-status                      is the company calling this customer? (scope status)
GET  /api/v1/coverage?day=YYYY-MM-DD          tickets per department on a day       (scope status)
GET  /api/v1/agents                           the agent registry                    (scope agents)
POST /api/v1/agents                           register an agent                     (scope agents)
PATCH /api/v1/agents/<agent_id>               change its names per language         (scope agents)
GET|PUT /api/v1/agents/<agent_id>/voice-route  the voice line's transfer target, queue  (agents)
POST /api/v1/enrollments                      a token for the enrolment page        (scope enrol)

Every request carries ``Authorization: Bearer cpk_…``. The key is looked up in the store on
every request, so a revoked key is refused from the next request on, on every server. Limits:
``API_KEY_LIMIT`` per key over all endpoints, ``AGENT_ISSUE_LIMIT`` tickets per agent (Flask-
Limiter, so Redis shares the counters between instances); both count only requests that carry
a valid key, so nobody can use up a key's budget by sending its key id with a wrong secret.

``POST /tickets`` takes an ``Idempotency-Key`` header: the same key and body from the same API
key give the same ticket (the same response, with ``Idempotent-Replayed: true``) for 24 h; the
same key with another body is 422 ``idempotency_key_reused`` (callproof.idempotency).

Every error is ``{"error": <machine code>, "message": <one English sentence>}``. A refused
request changes nothing: bodies are checked before the library is asked, and the library checks
the rest inside the transaction that would write.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request, url_for
from flask_limiter import RateLimitExceeded
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from callproof import ConfigError, InputError, NotFound, StoreError, TransitionRefused, seclog
from callproof.agent_calls import status_json
from callproof.apikeys import ApiKey
from callproof.errors import AuthError, LogError, RevealRefused
from callproof.idempotency import IdempotentIssuing
from callproof.protocol.canonical import parse_json_strict
from callproof.protocol.languages import LANGUAGES

from .extensions import limiter, services
from .security import client_log_field

bp = Blueprint("api", __name__, url_prefix="/api/v1")
log = logging.getLogger("callproof.api")

View = Callable[..., Response]

_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")  # agent ids and reason codes (callproof.admin)
_TICKET_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ISSUE_FIELDS = ("agent_id", "reason", "customer_ref", "phone", "ttl", "locale")
_REALM = 'Bearer realm="callproof"'
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: The library's refusals of an issue request that keep their own machine code (spec/openapi.yaml).
_ISSUE_REFUSALS = frozenset({"bad_phone", "bad_ttl", "bad_customer", "disabled"})
#: How long a retry waits for the first request with its Idempotency-Key to finish (seconds).
IDEMPOTENCY_WAIT = 2.0


class ApiError(Exception):
    """A refusal with its status, machine code and message (and headers, e.g. Retry-After)."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> Response:
    """The API's one error shape: ``{"error": code, "message": message}`` with ``status``."""
    response = jsonify({"error": code, "message": message})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _sentence(text: str) -> str:
    """A library message ("the ticket is closed") as an API message ("The ticket is closed.")."""
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "?", "!")) else ".")


# --- authentication and limits -----------------------------------------------------------


def _bearer() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def requires(scope: str) -> Callable[[View], View]:
    """Authenticate the bearer key for ``scope`` before the view (and its limits) run."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def authenticated(*args: Any, **kwargs: Any) -> Response:
            token = _bearer()
            try:
                g.api_key = services().api_keys.authenticate(token, scope=scope)
            except AuthError as e:
                seclog.event("api_key.refused", scope=scope, status=e.status,
                             presented=token is not None, client=client_log_field())
                if e.status == 403:
                    return error_response(
                        403, "insufficient_scope", f"This API key lacks the {scope!r} scope.",
                        {"WWW-Authenticate": f'{_REALM}, error="insufficient_scope", '
                                             f'scope="{scope}"'})
                if token is None:
                    return error_response(401, "unauthorized", "An API key is required: send "
                                          "Authorization: Bearer <key>.",
                                          {"WWW-Authenticate": _REALM})
                return error_response(401, "unauthorized", "The API key is unknown or revoked.",
                                      {"WWW-Authenticate": f'{_REALM}, error="invalid_token"'})
            seclog.event("api_key.used", key_id=g.api_key.key_id, scope=scope,
                         endpoint=request.endpoint, client=client_log_field())
            return view(*args, **kwargs)

        return authenticated

    return decorate


def _key_id() -> str:
    key: ApiKey = g.api_key
    return key.key_id


def _agent_key() -> str:
    """The agent a ticket is asked for ('' when the body names none that could exist)."""
    try:
        agent = _body().get("agent_id")
    except (ApiError, HTTPException):
        return ""
    if not isinstance(agent, str) or not _ID.fullmatch(agent):
        return ""
    return f"{services().deployment.issuer_id}/{agent}"


per_key = limiter.shared_limit(lambda: str(current_app.config["API_KEY_LIMIT"]),
                               scope="api-key", key_func=_key_id)
per_agent = limiter.shared_limit(lambda: str(current_app.config["AGENT_ISSUE_LIMIT"]),
                                 scope="agent-issue", key_func=_agent_key,
                                 exempt_when=lambda: not _agent_key())


def scoped(scope: str) -> Callable[[View], View]:
    """Every endpoint's prelude: a bearer key with ``scope`` (:func:`requires`), then the key's
    limit (``API_KEY_LIMIT``). In this order, so that only requests with a valid key use up a
    key's budget; a limit of the endpoint's own (``per_agent``) goes below it."""

    def decorate(view: View) -> View:
        return requires(scope)(per_key(view))

    return decorate


# --- the request body --------------------------------------------------------------------


def _body() -> dict[str, Any]:
    """The body as a JSON object, read once (the agent limit's key needs it before the view)."""
    if "api_body" not in g:
        try:
            g.api_body = (_read_json_object(), None)
        except (ApiError, HTTPException) as e:
            g.api_body = ({}, e)
    body, err = g.api_body
    if err is not None:
        raise err
    found: dict[str, Any] = body
    return found


def _read_json_object() -> dict[str, Any]:
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type",
                       "Send the body as JSON with Content-Type: application/json.")
    data = request.get_data(cache=True)  # 413 past MAX_CONTENT_LENGTH
    try:
        body = parse_json_strict(data)
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "The body is not valid JSON (UTF-8, no duplicate "
                                            "members, no NaN or Infinity).") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "The body must be a JSON object.")
    return body


def _members(allowed: tuple[str, ...]) -> dict[str, Any]:
    """The body (:func:`_body`), refused when it has a member not in ``allowed``."""
    body = _body()
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        names = ", ".join(repr(n[:40]) for n in unknown[:5])
        raise _invalid(f"The body has members this API does not know ({names}); it takes "
                       f"{', '.join(allowed)}.", "unknown_field")
    return body


def _text(value: object) -> bool:
    """A string that can be stored: valid Unicode (no lone surrogates) and printable."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return value.isprintable()


#: ``customer_ref`` as spec/openapi.yaml's ``CustomerRef`` says: 1–256 characters, none of them a
#: control character (C0, DEL, C1, the line and paragraph separators: ``not: pattern``) and one at
#: least neither that nor a space (``pattern``). The same two unanchored searches here and there.
_CONTROL = "\x00-\x1f\x7f-\x9f\u2028\u2029"
_SPACES = " \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
_REF_CONTROL = re.compile(f"[{_CONTROL}]")
_REF_VISIBLE = re.compile(f"[^{_CONTROL}{_SPACES}]")
_BAD_REF = "The customer_ref must be 1–256 characters, not only spaces, with no control character."


def _customer_ref(value: object) -> bool:
    """Whether ``value`` is a customer_ref the document allows (and that can be stored)."""
    return isinstance(value, str) and 1 <= len(value) <= 256 and \
        _REF_CONTROL.search(value) is None and _REF_VISIBLE.search(value) is not None and \
        _storable(value)


def _storable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _invalid(message: str, code: str = "invalid_field") -> ApiError:
    return ApiError(422, code, message)


def _issue_args() -> dict[str, Any]:
    """The issue request's members, checked for shape; the library checks meaning."""
    body = _members(_ISSUE_FIELDS)
    args: dict[str, Any] = {}
    for name in ("agent_id", "reason"):
        if body.get(name) is None:
            raise _invalid(f"The body needs {name}.", "missing_field")
        if not _text(body[name]) or not _ID.fullmatch(body[name]):
            raise _invalid(f"The {name} must be a string of 1–64 letters, digits or . _ : @ -.")
        args[name] = body[name]
    ref = body.get("customer_ref")
    if ref is not None:
        if not _customer_ref(ref):
            raise _invalid(_BAD_REF)
        args["customer_ref"] = ref
    phone = body.get("phone")
    if phone is not None:
        if not _text(phone) or not 1 <= len(phone) <= 32:
            raise _invalid("The phone must be the number dialled, in E.164 form like "
                           "+886912345678.", "bad_phone")
        args["phone"] = phone
    ttl = body.get("ttl")
    if ttl is not None:
        if type(ttl) is not int:
            raise _invalid("The ttl must be a whole number of seconds.", "bad_ttl")
        args["ttl"] = ttl
    locale = body.get("locale")
    if locale is not None and locale not in LANGUAGES:
        raise _invalid(f"The locale must be one of {', '.join(LANGUAGES)}.")
    return args


def _ticket_id(ticket_id: str) -> str:
    if not _TICKET_ID.fullmatch(ticket_id):
        raise ApiError(404, "not_found", "There is no ticket with this id.")
    return ticket_id


def _agent_id(agent_id: str) -> str:
    """An agent id of the path; one that could not exist is a 404, like an unknown one."""
    if not _ID.fullmatch(agent_id):
        raise _no_agent()
    return agent_id


def _no_agent() -> ApiError:
    return ApiError(404, "not_found", "There is no agent with this id.")


# --- the endpoints -----------------------------------------------------------------------


@bp.post("/tickets")
@scoped("issue")
@per_agent
def issue() -> Response:
    """Issue a ticket for a call the dialer is placing now."""
    args = _issue_args()
    issuer = services().issuer
    key_id = _key_id()
    replayed = False
    try:
        idempotency_key = _idempotency_key()
        if idempotency_key is None:
            call = issuer.issue(**args, api_key=key_id)
        else:
            call, replayed = IdempotentIssuing(issuer).issue(
                idempotency_key, api_key=key_id, request=_body(),
                wait_seconds=IDEMPOTENCY_WAIT, **args)
    except NotFound:
        known = {a.agent_id for a in services().admin.agents()}
        if args["agent_id"] not in known:
            raise _invalid(f"There is no agent {args['agent_id']!r} in the agent registry.",
                           "unknown_agent") from None
        raise _invalid(f"There is no reason {args['reason']!r} in the reason catalogue.",
                       "unknown_reason") from None
    except ConfigError as e:
        log.error("cannot issue: %s", e)
        raise ApiError(503, "unavailable", "The issuer cannot sign tickets right now; try "
                                           "again shortly.") from None
    except InputError as e:
        if e.reason == "idempotency_key_in_progress":
            raise ApiError(409, e.reason, _sentence(str(e)), {"Retry-After": "1"}) from None
        if e.reason == "bad_idempotency_key":
            raise ApiError(400, e.reason, _sentence(str(e))) from None
        if e.reason == "idempotency_key_reused":
            raise _invalid(_sentence(str(e)), e.reason) from None
        code = e.reason if e.reason in _ISSUE_REFUSALS else "invalid_field"
        raise _invalid(_sentence(str(e)), code) from None
    if replayed:
        log.info("api key %s: a retry got ticket %s again", key_id, call.ticket_id)
    else:
        log.info("api key %s issued ticket %s", key_id, call.ticket_id)
    response = jsonify(call.to_json())
    response.status_code = 201
    response.headers["Location"] = url_for("api.status", ticket_id=call.ticket_id)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _idempotency_key() -> str | None:
    """The request's Idempotency-Key header (None without one; checked by the library)."""
    found = request.headers.getlist("Idempotency-Key")
    if len(found) > 1:
        raise ApiError(400, "bad_idempotency_key", "Send one Idempotency-Key header, not "
                                                   f"{len(found)}.")
    return found[0] if found else None


@bp.get("/tickets/<ticket_id>")
@scoped("status")
def status(ticket_id: str) -> Response:
    """The agent's view of the call: state, the check word once it is due, alerts. The check
    word's ``text`` is in ``lang``; once the customer has typed the code, ``customer_lang`` and
    ``customer_text`` add their page's language and the word as they see it."""
    lang = request.args.get("lang", "en")
    if lang not in LANGUAGES:
        raise _invalid(f"The lang parameter must be one of {', '.join(LANGUAGES)}.")
    try:
        found = services().issuer.status(_ticket_id(ticket_id))
    except NotFound:
        raise ApiError(404, "not_found", "There is no ticket with this id.") from None
    return jsonify(status_json(services().deployment, found, lang))


def _dialer_step(action: str, ticket_id: str) -> Response:
    issuer = services().issuer
    method = {"connected": issuer.connected, "close": issuer.close,
              "revoke": issuer.revoke_ticket}[action]
    try:
        state = method(_ticket_id(ticket_id), api_key=_key_id())
    except NotFound:
        raise ApiError(404, "not_found", "There is no ticket with this id.") from None
    except TransitionRefused as e:
        raise ApiError(409, "wrong_state", _sentence(str(e))) from None
    log.info("api key %s: %s ticket %s", _key_id(), action, ticket_id)
    return jsonify({"ticket_id": ticket_id, "state": state})


@bp.post("/tickets/<ticket_id>/connected")
@scoped("issue")
def connected(ticket_id: str) -> Response:
    """The dialer reports that the customer picked up."""
    return _dialer_step("connected", ticket_id)


@bp.post("/tickets/<ticket_id>/close")
@scoped("issue")
def close(ticket_id: str) -> Response:
    """The dialer reports the hang-up: the code confirms nothing any more."""
    return _dialer_step("close", ticket_id)


@bp.post("/tickets/<ticket_id>/revoke")
@scoped("issue")
def revoke(ticket_id: str) -> Response:
    """Withdraw a ticket that should not have been issued."""
    return _dialer_step("revoke", ticket_id)


# --- the agent registry (experience issue 14 item 3): names per language --------------------

_AGENT_TEXTS = ("name", "department")
_NAMES = ("names", "department_names")
_NAME_LANGS = ("zh-Hant", "zh-Hans")


def _agent_body(allowed: tuple[str, ...], *, blank_removes: bool) -> dict[str, Any]:
    """An agent body's members, checked for shape (the library checks the texts again)."""
    body = _members(allowed)
    args: dict[str, Any] = {}
    for name in _AGENT_TEXTS:
        if name in body:
            if not _agent_text(body[name], blank=blank_removes and name == "department"):
                raise _invalid(f"The {name} must be a string of 1–128 printable characters"
                               + (' ("" removes the department).' if blank_removes and
                                  name == "department" else "."))
            args[name] = body[name]
    for name in _NAMES:
        if name in body:
            texts = body[name]
            if not isinstance(texts, dict) or set(texts) - set(_NAME_LANGS) or not all(
                    _agent_text(t, blank=blank_removes) for t in texts.values()):
                raise _invalid(f"The {name} must be an object with zh-Hant and/or zh-Hans, each "
                               "a string of 1–128 printable characters"
                               + (' ("" removes one).' if blank_removes else "."))
            args[name] = texts
    return args


def _agent_text(value: object, *, blank: bool = False) -> bool:
    if not _text(value) or not isinstance(value, str) or len(value.strip()) > 128:
        return False
    return blank or bool(value.strip())


@bp.get("/agents")
@scoped("agents")
def list_agents() -> Response:
    """Every agent of the registry, with the names per language."""
    return jsonify({"agents": [a.to_dict() for a in services().admin.agents()]})


@bp.post("/agents")
@scoped("agents")
def add_agent() -> Response:
    """Register an agent, with its name and department per language."""
    body = _body()
    if body.get("agent_id") is None or body.get("name") is None:
        raise _invalid("The body needs agent_id and name.", "missing_field")
    agent_id = body["agent_id"]
    if not _text(agent_id) or not _ID.fullmatch(agent_id):
        raise _invalid("The agent_id must be a string of 1–64 letters, digits or . _ : @ -.")
    args = _agent_body(("agent_id", *_AGENT_TEXTS, *_NAMES), blank_removes=False)
    try:
        agent = services().admin.add_agent(agent_id, args.pop("name"), api_key=_key_id(),
                                           **args)
    except InputError as e:
        if e.reason == "exists":
            raise ApiError(409, "agent_exists", f"There is an agent {agent_id!r} already; "
                                                "change it with PATCH.") from None
        raise _invalid(_sentence(str(e))) from None
    response = jsonify(agent.to_dict())
    response.status_code = 201
    return response


@bp.patch("/agents/<agent_id>")
@scoped("agents")
def set_agent(agent_id: str) -> Response:
    """Change an agent's name, department or their texts per language ("" removes one)."""
    agent_id = _agent_id(agent_id)
    args = _agent_body((*_AGENT_TEXTS, *_NAMES), blank_removes=True)
    if not args:
        raise _invalid("The body needs one of name, department, names, department_names.",
                       "missing_field")
    try:
        agent = services().admin.set_agent(agent_id, api_key=_key_id(), **args)
    except NotFound:
        raise _no_agent() from None
    except InputError as e:
        raise _invalid(_sentence(str(e))) from None
    return jsonify(agent.to_dict())



# --- the voice line's route for an agent (spec/voice-line.md §4) ---------------------------


def _voice_route(agent_id: str, route: Any) -> Response:
    return jsonify({"agent_id": agent_id, **route.to_dict()})


@bp.get("/agents/<agent_id>/voice-route")
@scoped("agents")
def get_voice_route(agent_id: str) -> Response:
    """Where the voice line puts this agent's verified customers back through to."""
    from callproof.voice.routes import Routes

    if services().admin.agent(_agent_id(agent_id)) is None:
        raise _no_agent()
    return _voice_route(agent_id, Routes(services().deployment).get(agent_id))


@bp.put("/agents/<agent_id>/voice-route")
@scoped("agents")
def set_voice_route(agent_id: str) -> Response:
    """Set the agent's transfer target and team queue ("" or null removes one)."""
    from callproof.voice.routes import Routes

    agent_id = _agent_id(agent_id)
    allowed = ("transfer_target", "queue")
    body = _members(allowed)
    if not body:
        raise _invalid("The body needs transfer_target or queue.", "missing_field")
    args: dict[str, str | None] = {}
    for name in allowed:
        if name in body:
            value = body[name]
            if value is not None and not (_text(value) and len(value) <= 255):
                raise _invalid(f"The {name} must be a SIP URI or an E.164 number.")
            args[name] = "" if value is None else value
    try:
        route = Routes(services().deployment).set(
            agent_id, transfer_target=args.get("transfer_target"), queue=args.get("queue"))
    except NotFound:
        raise _no_agent() from None
    except InputError as e:  # not a SIP URI / E.164, or outside [voice] transfer_allowed
        raise _invalid(_sentence(str(e)), "target_not_allowed" if getattr(
            e, "reason", None) in ("target_not_allowed", "no_transfer_allowed")
            else "invalid_field") from None
    return _voice_route(agent_id, route)

# --- enrolled proofs, the app call status, coverage (spec/enrolled-proofs.md) -------------


def _customer_body(allowed: tuple[str, ...]) -> dict[str, Any]:
    """A body naming one customer by ``customer_ref`` (and, for the call status, ``lang``)."""
    body = _members(allowed)
    ref = body.get("customer_ref")
    if ref is None:
        raise _invalid("The body needs customer_ref.", "missing_field")
    if not _customer_ref(ref):
        raise _invalid(_BAD_REF)
    lang = body.get("lang")
    if "lang" in body and lang not in LANGUAGES:  # null too: the document says a language
        raise _invalid(f"The lang must be one of {', '.join(LANGUAGES)}.")
    return {"customer_ref": ref, **({"lang": lang} if lang is not None else {})}


@bp.post("/call-status")
@scoped("status")
def call_status() -> Response:
    """Is the company calling this customer now? (The ref travels in the body, never a URL.)"""
    args = _customer_body(("customer_ref", "lang"))
    try:
        found = services().enrolled.call_status(args["customer_ref"],
                                                lang=args.get("lang", "en"))
    except InputError as e:
        raise _invalid(_sentence(str(e))) from None
    return jsonify(found)


@bp.get("/coverage")
@scoped("status")
def coverage() -> Response:
    """Tickets per department on one day (UTC), every staffed department listed."""
    raw = request.args.get("day")
    if raw is None:
        raise _invalid("The day parameter is required, as YYYY-MM-DD.", "missing_field")
    try:
        if not _DAY.fullmatch(raw):
            raise ValueError(raw)
        day = date.fromisoformat(raw)
    except ValueError:
        raise _invalid("The day parameter must be a date as YYYY-MM-DD.") from None
    return jsonify(services().enrolled.coverage(day))


@bp.post("/enrollments")
@scoped("enrol")
def create_enrollment() -> Response:
    """A single-use enrolment-page token (15 minutes) for the company's logged-in site."""
    args = _customer_body(("customer_ref",))
    try:
        token = services().enrolled.create_enrollment(args["customer_ref"], api_key=_key_id())
    except InputError as e:
        code = e.reason if e.reason == "bad_customer" else "invalid_field"
        raise _invalid(_sentence(str(e)), code) from None
    log.info("api key %s made an enrolment token", _key_id())
    response = jsonify({**token.to_json(),
                        "url": url_for("enroll.open_token", token=token.token)})
    response.status_code = 201
    return response


@bp.post("/tickets/<ticket_id>/reveal")
@scoped("reveal")
def reveal(ticket_id: str) -> Response:
    """The customer's current app code and/or phrase, during the connected call."""
    try:
        found = services().enrolled.reveal(_ticket_id(ticket_id), api_key=_key_id())
    except NotFound:
        raise ApiError(404, "not_found", "There is no ticket with this id.") from None
    except RevealRefused as e:
        raise ApiError(409, e.reason, _sentence(str(e))) from None
    except ConfigError as e:
        log.error("cannot reveal: %s", e.__class__.__name__)
        raise ApiError(503, "unavailable", "The enrolled proofs cannot be opened right now; "
                                           "try again shortly.") from None
    seclog.event("reveal", key_id=_key_id(), ticket_id=ticket_id)
    return jsonify(found.to_json())


# --- everything else is JSON too ---------------------------------------------------------

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "TRACE", "QUERY")


def _not_allowed(allowed: tuple[str, ...]) -> View:
    def view(**_kwargs: Any) -> Response:
        return error_response(405, "method_not_allowed",
                              f"Use {' or '.join(allowed)} here.",
                              {"Allow": ", ".join((*allowed, "OPTIONS"))})

    return view


for _n, (_rule, _allowed) in enumerate((
        ("/tickets", ("POST",)),
        ("/tickets/<ticket_id>", ("GET", "HEAD")),
        ("/tickets/<ticket_id>/<any(connected, close, revoke, reveal):_action>", ("POST",)),
        ("/call-status", ("POST",)),
        ("/coverage", ("GET", "HEAD")),
        ("/enrollments", ("POST",)),
        ("/agents", ("GET", "HEAD", "POST")),
        ("/agents/<agent_id>", ("PATCH",)),
        ("/agents/<agent_id>/voice-route", ("GET", "HEAD", "PUT")))):
    bp.add_url_rule(_rule, f"not_allowed_{_n}", _not_allowed(_allowed),
                    methods=[m for m in _METHODS if m not in _allowed],
                    provide_automatic_options=False)


@bp.before_request
def _options() -> Response | None:
    """``OPTIONS``: 204 with ``Allow`` naming only the methods this path has (Flask's own answer
    would list every method of the 405 rules above too); a JSON 404 for a path there is not."""
    if request.method != "OPTIONS":
        return None
    adapter = current_app.create_url_adapter(request)
    allowed: list[str] = []
    for method in _METHODS:
        try:
            endpoint, _args = adapter.match(request.path, method=method)  # type: ignore[union-attr]
        except HTTPException:
            continue
        if not str(endpoint).startswith(("api.not_allowed_", "api.unknown")):
            allowed.append(method)
    if not allowed:
        return error_response(404, "not_found", "There is no such API endpoint; see "
                                                "spec/openapi.yaml.")
    response = current_app.response_class(status=204)
    response.headers["Allow"] = ", ".join((*allowed, "OPTIONS"))
    return response


@bp.route("/<path:_path>", methods=list(_METHODS))
def unknown(_path: str) -> Response:
    """Any other path under /api/v1: a JSON 404."""
    return error_response(404, "not_found", "There is no such API endpoint; see "
                                            "spec/openapi.yaml.")


@bp.errorhandler(ApiError)
def api_error(e: ApiError) -> Response:
    """A refusal raised by a view, as the API's error shape."""
    return error_response(e.status, e.code, e.message, e.headers)


@bp.errorhandler(RateLimitExceeded)
def rate_limited(_e: RateLimitExceeded) -> Response:
    """A key or agent over its limit: 429 with Retry-After."""
    current = limiter.current_limit
    wait = max(1, math.ceil(current.reset_at - time.time())) if current else 60
    return error_response(429, "rate_limited", f"Too many requests for this key or agent; "
                                               f"try again in {wait} seconds.",
                          {"Retry-After": str(wait)})


@bp.errorhandler(RequestEntityTooLarge)
def too_large(_e: RequestEntityTooLarge) -> Response:
    """A body over MAX_CONTENT_LENGTH: 413."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    return error_response(413, "too_large",
                          f"The body is larger than the {limit // 1024} KiB this API accepts.")


@bp.errorhandler(StoreError)
def database_down(e: StoreError) -> Response:
    """The database cannot be reached, or the audit log refuses to record: logged with the
    reason, and an honest 503."""
    if isinstance(e, LogError):
        log.error("the audit log refuses to record: %s", e)
        return error_response(
            503, "unavailable", "The audit log cannot record this, so nothing was done: the "
            "database is behind or not the one the log signed (an old backup restored?). The "
            "operator must restore the newest database; GET /healthz says more.")
    log.error("the database is unavailable: %s", e)
    return error_response(503, "unavailable", "The database is unavailable; try again shortly.")


@bp.errorhandler(HTTPException)
def http_error(e: HTTPException) -> Response:
    """Any other HTTP error, named after its status (``method_not_allowed``, …)."""
    code = (e.name or "error").lower().replace(" ", "_").replace("'", "")
    return error_response(e.code or 500, code, _sentence(e.description or e.name or "error"))


@bp.errorhandler(500)
def server_error(_e: Exception) -> Response:
    """An unexpected failure: 500, with nothing of its cause (the log has it)."""
    return error_response(500, "internal_error", "Something failed on the server; it has been "
                                                 "logged. Try again shortly.")
