"""The customer's call check page (DESIGN §3.1): one question per page, no JavaScript needed.

Every form answers with a 303 to a GET page (Post/Redirect/Get), so that Back and reload never
ask to resend a form in the middle of a check:

GET  /, /call           "Is <company> calling you right now?" — the call code box (``/call`` is
                        the address the notice card prints)
POST /verify            claims the ticket for this browser → /verify/step; a code that is not
                        right → /verify (the box again, with what was typed); else /verify/failed
GET  /verify            the code box again, with the problem and the digits typed
GET  /verify/step?t=…   where the check is: "Does your phone end in 5678?", the check word, or
                        confirmed (also a reload, Back, or a language switch)
POST /verify/number     yes → the check word; no → the failure page; not sure → /verify/unsure
GET  /verify/unsure?t=… how to see one's own number, the question again, and the safe way out
POST /verify/word       right → confirmed; wrong → the failure page
GET  /verify/failed     the one failure page
GET  /report            the optional scam report, also reachable without a code
POST /report            → /report/thanks; a field that is not right → the form again, as typed
GET  /report/thanks

Every failure shows the same page with the same status (the cause goes to the log only). Where a
browser is in its check lives with the ticket it claimed, found by the claim cookie; what a GET
page cannot find there — the last code's problem, or "checked on another device" — rides in
``cp_page``, a first-party HttpOnly SameSite=Strict cookie for /verify (``__Host-cp_page`` over
HTTPS, like the claim cookie) that lives 10 minutes. A call code that
may be valid is never echoed, stored or logged: only digits that cannot be one (fewer than nine,
or nine whose check digit is wrong: a typo) are kept, and shown back to the customer who typed
them, grouped 3-3-3. The app-wide error pages (a stale form, a bad or oversized request, too many
lookups, our outage, 404/405/500) are in :mod:`verifier_app.errors`.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from callproof import CheckFailed, CheckStep, CodeError, InputError
from callproof.protocol.codes import CODE_DIGITS, MAX_INPUT_CHARS, damm_valid
from callproof.protocol.events import REPORT_SCRIPTS as SCRIPTS
from callproof.scam_reports import MAX_TEXT, normalise_caller_number

from .extensions import services
from .i18n import company_here, current_language, hotline_text, in_language
from .security import claim_token, set_claim_cookie

bp = Blueprint("public", __name__)
log = logging.getLogger("callproof.web")

#: The last answer's problem for the GET page that shows it (see the module's docstring).
PAGE_COOKIE = "cp_page"
PAGE_COOKIE_MAX_AGE = 600
_ELSEWHERE = "elsewhere"
_KEPT = re.compile(r"(typo|format)-([0-9]{0,9})\Z")
_MAX_KEPT_TEXT = 2 * MAX_TEXT  # a report text too long is shown back so it can be shortened


def _page(template: str, here: tuple[str, dict[str, Any]], status: int = 200,
          **context: Any) -> Response:
    company = company_here(services().deployment.config.company)
    return make_response(render_template(
        template, company=company, here=here,
        hotline=hotline_text(company.country, company.hotline), **context), status)


def _go(endpoint: str, **values: Any) -> Response:
    """A 303 to a GET page, in the language of the page the form was on."""
    return make_response(redirect(url_for(endpoint, **values, lang=current_language()), 303))


# --- the cookie for the last answer's problem ----------------------------------------------


def _page_cookie() -> tuple[str, str, bool]:
    """The cookie's name, path and Secure flag: like the claim cookie's (``security.py``), over
    HTTPS ``__Host-cp_page`` (Secure, so ``Path=/``), over plain HTTP ``cp_page`` for /verify."""
    https = bool(current_app.config.get("HTTPS"))
    if https:
        return "__Host-" + PAGE_COOKIE, "/", True
    return PAGE_COOKIE, "/verify", request.is_secure


def _page_cookie_value() -> str:
    return request.cookies.get(_page_cookie()[0], "")


def _set_page_cookie(response: Response, value: str) -> None:
    name, path, secure = _page_cookie()
    response.set_cookie(name, value, max_age=PAGE_COOKIE_MAX_AGE, path=path, secure=secure,
                        httponly=True, samesite="Strict")


def _clear_page_cookie(response: Response) -> None:
    name, path, secure = _page_cookie()
    if name in request.cookies:
        response.delete_cookie(name, path=path, secure=secure, httponly=True, samesite="Strict")


def _showable(digits: str) -> bool:
    """Whether these digits cannot be a call code: fewer than nine, or a wrong check digit."""
    return len(digits) < CODE_DIGITS or (len(digits) == CODE_DIGITS and not damm_valid(digits))


def _kept_digits(typed: str) -> str:
    """The digits of a refused code that may be shown back to the customer who typed them:
    never nine digits that could be a genuine call code, nor anything from a long paste."""
    if len(typed) > MAX_INPUT_CHARS:
        return ""
    digits = "".join(ch for ch in unicodedata.normalize("NFKC", typed) if "0" <= ch <= "9")
    return digits if _showable(digits) else ""


def _grouped(digits: str) -> str:
    """``482917366`` → ``482 917 366``, as the agent reads a code out."""
    return " ".join(digits[i:i + 3] for i in range(0, len(digits), 3))


def _code_problem(kind: str) -> str:
    if kind == "typo":
        return str(_("One digit of the call code is not right. Check the code and type it "
                     "again."))
    return str(_("Type the 9 digits of the call code. Use digits only."))


# --- pages ----------------------------------------------------------------------------------


def index_page(error: str | None = None, status: int = 200, *, typed: str = "",
               here: tuple[str, dict[str, Any]] = ("public.index", {})) -> Response:
    """The call code box, with ``error`` (one sentence in the page's language) at the top and
    beside the box, and ``typed`` (digits that cannot be a call code) kept in it."""
    return _page("index.html", here, status, error=error, typed=typed)


def _failure(elsewhere: bool = False) -> Response:
    return _page("failed.html", ("public.failed", {}), 200, scripts=SCRIPTS, max_text=MAX_TEXT,
                 elsewhere=elsewhere)


def failure_page(outcome: str, ticket_id: str | None = None) -> Response:
    """The one page every failure shows, whatever the cause (the cause goes to the log)."""
    log.info("check failed: outcome=%s ticket=%s", outcome, ticket_id or "-")
    return _failure()


def failure_redirect(outcome: str, ticket_id: str | None = None) -> Response:
    """A 303 to the one failure page (the cause goes to the log). A second device also reads
    there that the code was already checked on another one (DESIGN §3.1 step 3): a strong sign
    that somebody else has the code, and nothing a scammer can use — the ticket has just
    failed."""
    log.info("check failed: outcome=%s ticket=%s", outcome, ticket_id or "-")
    response = _go("public.failed")
    if outcome == "claimed_elsewhere":
        _set_page_cookie(response, _ELSEWHERE)
    else:
        _clear_page_cookie(response)
    return response


def check_failed(outcome: str, ticket_id: str | None = None) -> Response:
    """The failure page: a 303 to it after a form, the page itself on a GET."""
    if request.method == "POST":
        return failure_redirect(outcome, ticket_id)
    return failure_page(outcome, ticket_id)


def _step_page(step: CheckStep) -> Response:
    lang = current_language()
    here = ("public.step", {"t": step.ticket_id})
    reason = step.reason.text.get(lang, step.reason.text["en"]) if step.reason else \
        step.ticket.reason
    # The agent's and the department's names in the page's language where the registry has
    # them (``agent_names`` / ``department_names``: language tag → text), else as signed.
    agent = in_language(getattr(step, "agent_names", None), step.ticket.agent_name)
    department = in_language(getattr(step, "department_names", None),
                             step.ticket.department) if step.ticket.department else None
    if step.step == "number":
        return _page("number.html", here, step=step)
    if step.step == "word":
        return _page("word.html", here, step=step, reason=reason, agent=agent,
                     department=department, choices=[w.to_dict(lang) for w in step.choices])
    return _page("confirmed.html", here, step=step, reason=reason, agent=agent,
                 department=department)


def _ticket_field() -> str:
    return request.values.get("t", "")[:64]


# --- the code -------------------------------------------------------------------------------


@bp.get("/")
def index() -> Response:
    """The call code box."""
    return index_page()


@bp.get("/call")
def call() -> Response:
    """The call code box at the address the notice card prints (``shop.example/call``)."""
    return index_page(here=("public.call", {}))


@bp.post("/verify")
def verify() -> Response:
    """Look the typed call code up and claim its ticket for this browser → the next question,
    the code box again when the code is not right, or the failure page (a failed lookup counts
    against the client's limit)."""
    token, new = claim_token(request)
    typed = request.form.get("code", "")
    try:
        # The library's per-address and per-network counts decide (spec §10), shared by every
        # instance through the database; the address is the one the proxy settings trust.
        step = services().flow.lookup(typed, token, client_address=request.remote_addr,
                                      lang=current_language())
    except CodeError as e:
        response = _go("public.code_again")
        kind = "typo" if e.reason == "typo" else "format"
        _set_page_cookie(response, f"{kind}-{_kept_digits(typed)}")
        return response
    except CheckFailed as e:
        response = failure_redirect(e.outcome, e.ticket_id)
    else:
        response = _go("public.step", t=step.ticket_id)
        _clear_page_cookie(response)
    if new:
        set_claim_cookie(response, token)
    return response


@bp.get("/verify")
def code_again() -> Response:
    """The code box again, with the last code's problem and the digits typed (400: the code was
    refused); just the box when there is nothing to show again (Back, a later visit)."""
    here: tuple[str, dict[str, Any]] = ("public.code_again", {})
    kept = _KEPT.match(_page_cookie_value())
    if kept is None:
        return index_page(here=here)
    kind, digits = kept.groups()
    shown = _grouped(digits) if _showable(digits) else ""
    return index_page(_code_problem(kind), 400, typed=shown, here=here)


# --- the steps ------------------------------------------------------------------------------


@bp.post("/verify/number")
def number() -> Response:
    """The answer to "Does your phone end in …?": yes → the check word; no → the failure page;
    not sure → how to see one's own number."""
    answer = request.form.get("answer")
    if answer not in ("yes", "no", "unsure"):
        return index_page(_("Something went wrong. Type the call code again."), 400)
    if answer == "unsure":
        return _go("public.unsure", t=_ticket_field())
    token, _new = claim_token(request)
    try:
        step = services().flow.answer_number(_ticket_field(), token, yes=answer == "yes")
    except CheckFailed as e:
        return failure_redirect(e.outcome, e.ticket_id)
    return _go("public.step", t=step.ticket_id)


@bp.post("/verify/word")
def word() -> Response:
    """The tapped check word: the right one confirms the call, any other fails it."""
    token, _new = claim_token(request)
    try:
        step = services().flow.choose_word(_ticket_field(), token,
                                           request.form.get("word", "")[:64])
    except CheckFailed as e:
        return failure_redirect(e.outcome, e.ticket_id)
    return _go("public.step", t=step.ticket_id)


@bp.get("/verify/step")
def step() -> Response:
    """Where this browser's check is (after a form, a reload, Back or a language switch)."""
    token, _new = claim_token(request)
    try:
        current = services().flow.current_step(_ticket_field(), token)
    except CheckFailed as e:
        return failure_page(e.outcome, e.ticket_id)
    return _step_page(current)


@bp.get("/verify/unsure")
def unsure() -> Response:
    """"I'm not sure" on the phone question: how to see the last digits of one's own number,
    the question again, and the safe way out (hang up and call the official number)."""
    token, _new = claim_token(request)
    try:
        current = services().flow.current_step(_ticket_field(), token)
    except CheckFailed as e:
        return failure_page(e.outcome, e.ticket_id)
    if current.step != "number":
        return _go("public.step", t=current.ticket_id)
    return _page("unsure.html", ("public.unsure", {"t": current.ticket_id}), step=current)


@bp.get("/verify/failed")
def failed() -> Response:
    """The failure page (after a form, a reload, or a language switch)."""
    return _failure(elsewhere=_page_cookie_value() == _ELSEWHERE)


# --- the scam report ------------------------------------------------------------------------


def _report_page(status: int = 200, errors: dict[str, str] | None = None, *,
                 number: str = "", asked: Iterable[str] = (), text: str = "") -> Response:
    return _page("report.html", ("public.report_form", {}), status, scripts=SCRIPTS,
                 max_text=MAX_TEXT, errors=errors or {},
                 kept={"number": number, "asked": set(asked), "text": text})


@bp.get("/report")
def report_form() -> Response:
    """The optional scam report on its own: reachable from the first page without a code."""
    return _report_page()


@bp.post("/report")
def report() -> Response:
    """File the customer's optional scam report: what the caller asked for, the caller's number
    and a short text. A field that is not right shows the form again as it was typed, with the
    problems at the top and beside each field (nothing of it is stored or logged)."""
    chosen = [s for s in request.form.getlist("asked") if s in SCRIPTS]
    number_typed = request.form.get("number", "")
    text = request.form.get("text", "")
    errors: dict[str, str] = {}
    if number_typed.strip():
        try:
            normalise_caller_number(number_typed, services().deployment.config.company.country)
        except InputError:
            errors["number"] = _("That phone number does not look right.")
    if len(text.strip()) > MAX_TEXT:
        errors["text"] = _("Please write at most %(n)d characters.", n=MAX_TEXT)
    if not errors:
        try:
            services().reports.file(scripts=chosen, caller_number=number_typed, text=text,
                                    client_address=request.remote_addr)
        except InputError as e:
            if e.reason == "too_many_reports":
                errors["limit"] = _("Many reports came from this connection in the last hour, "
                                    "so we cannot take more now. Thank you: we have them.")
            elif e.reason == "bad_phone":
                errors["number"] = _("That phone number does not look right.")
            else:
                errors["text"] = _("Please write at most %(n)d characters.", n=MAX_TEXT)
    if errors:
        return _report_page(400, errors, number=number_typed[:64], asked=chosen,
                            text=text[:_MAX_KEPT_TEXT])
    return _go("public.report_thanks")


@bp.get("/report/thanks")
def report_thanks() -> Response:
    """Thank you; hang up if still on that call."""
    return _page("report_thanks.html", ("public.report_thanks", {}))
