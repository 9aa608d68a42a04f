"""The customer's call check page (DESIGN §3.1): one question per page, no JavaScript needed.

GET  /                  "Is <company> calling you right now?" — the call code box
POST /verify            claims the ticket for this browser → "Does your phone end in 5678?"
POST /verify/number     yes → the check word; no → the failure page
POST /verify/word       right → confirmed; wrong → the failure page
GET  /verify/step       the current step again (a language switch, a reload)
GET  /verify/failed     the failure page again (a language switch)
POST /report            an optional scam report

Every failure shows the same page with the same status. What the customer typed into the code
box is never stored, logged or echoed. The app-wide error pages (a stale form, a bad or oversized
request, too many lookups, the database down) are in :mod:`verifier_app.errors`.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, g, make_response, render_template, request
from flask_babel import gettext as _

from callproof import CheckFailed, CheckStep, CodeError, InputError
from callproof.protocol.events import REPORT_SCRIPTS as SCRIPTS
from callproof.scam_reports import MAX_TEXT

from .extensions import limiter, services
from .i18n import current_language, hotline_text
from .security import claim_token, set_claim_cookie

bp = Blueprint("public", __name__)
log = logging.getLogger("callproof.web")


def _lookup_limit() -> str:
    return str(current_app.config["LOOKUP_LIMIT"])


def _page(template: str, here: tuple[str, dict[str, Any]], status: int = 200,
          **context: Any) -> Response:
    company = services().deployment.config.company
    response = make_response(render_template(
        template, company=company, here=here,
        hotline=hotline_text(company.country, company.hotline), **context), status)
    return response


def index_page(error: str | None = None, status: int = 200) -> Response:
    """The call code box, with ``error`` (one sentence in the page's language) above it."""
    return _page("index.html", ("public.index", {}), status, error=error)


def failure_page(outcome: str, ticket_id: str | None = None) -> Response:
    """The one page every failure shows, whatever the cause (the cause goes to the log). A second
    device also reads that the code was already checked on another one (DESIGN §3.1 step 3): a
    strong sign that somebody else has the code, and nothing a scammer can use — the ticket has
    just failed."""
    log.info("check failed: outcome=%s ticket=%s", outcome, ticket_id or "-")
    return _page("failed.html", ("public.failed", {}), 200, scripts=SCRIPTS, max_text=MAX_TEXT,
                 elsewhere=outcome == "claimed_elsewhere")


def _step_page(step: CheckStep) -> Response:
    lang = current_language()
    here = ("public.step", {"t": step.ticket_id})
    reason = step.reason.text.get(lang, step.reason.text["en"]) if step.reason else \
        step.ticket.reason
    if step.step == "number":
        return _page("number.html", here, step=step)
    if step.step == "word":
        return _page("word.html", here, step=step, reason=reason,
                     choices=[w.to_dict(lang) for w in step.choices])
    return _page("confirmed.html", here, step=step, reason=reason)


@bp.get("/")
def index() -> Response:
    """The call code box."""
    return index_page()


@bp.post("/verify")
@limiter.limit(_lookup_limit, key_func=None, deduct_when=lambda _r: bool(g.get("failed_lookup")))
def verify() -> Response:
    """Look the typed call code up and claim its ticket for this browser: the next question,
    the code box again on a typo, or the failure page (a failed lookup counts against the
    client's limit)."""
    token, new = claim_token(request)
    try:
        step = services().flow.lookup(request.form.get("code", ""), token)
    except CodeError as e:
        if e.reason == "typo":
            return index_page(_("One digit of the call code is not right. Check the code and "
                                "type it again."), 400)
        return index_page(_("Type the 9 digits of the call code. Use digits only."), 400)
    except CheckFailed as e:
        g.failed_lookup = True
        response = failure_page(e.outcome, e.ticket_id)
    else:
        response = _step_page(step)
    if new:
        set_claim_cookie(response, token)
    return response


def _ticket_field() -> str:
    return request.values.get("t", "")[:64]


@bp.post("/verify/number")
def number() -> Response:
    """The answer to "Does your phone end in …?": yes → the check word; no → the failure page."""
    answer = request.form.get("answer")
    if answer not in ("yes", "no"):
        return index_page(_("Something went wrong. Type the call code again."), 400)
    token, _new = claim_token(request)
    try:
        step = services().flow.answer_number(_ticket_field(), token, yes=answer == "yes")
    except CheckFailed as e:
        return failure_page(e.outcome, e.ticket_id)
    return _step_page(step)


@bp.post("/verify/word")
def word() -> Response:
    """The tapped check word: the right one confirms the call, any other fails it."""
    token, _new = claim_token(request)
    try:
        step = services().flow.choose_word(_ticket_field(), token,
                                           request.form.get("word", "")[:64])
    except CheckFailed as e:
        return failure_page(e.outcome, e.ticket_id)
    return _step_page(step)


@bp.get("/verify/step")
def step() -> Response:
    """The current step again (a reload or a language switch)."""
    token, _new = claim_token(request)
    try:
        current = services().flow.current_step(_ticket_field(), token)
    except CheckFailed as e:
        return failure_page(e.outcome, e.ticket_id)
    return _step_page(current)


@bp.get("/verify/failed")
def failed() -> Response:
    """The failure page again (a language switch)."""
    return failure_page("shown_again")


@bp.post("/report")
def report() -> Response:
    """File the customer's optional scam report: what the caller asked for, the caller's number
    and a short text."""
    chosen = [s for s in request.form.getlist("asked") if s in SCRIPTS]
    try:
        services().reports.file(scripts=chosen, caller_number=request.form.get("number"),
                                text=request.form.get("text"))
    except InputError as e:
        error = _("That phone number does not look right.") if e.reason == "bad_phone" else \
            _("Please write at most %(n)d characters.", n=MAX_TEXT)
        return _page("failed.html", ("public.failed", {}), 400, scripts=SCRIPTS,
                     max_text=MAX_TEXT, report_error=error)
    return _page("report_thanks.html", ("public.index", {}))
