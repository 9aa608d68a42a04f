"""The agent console (issue #3): agents sign in, start a call, read the call code, say the
check word when the customer's page asks for it, and close the call.

GET  /console/sign-in                        the sign-in form (agent id + password)
POST /console/sign-in                        failed sign-ins are limited per client and agent id
POST /console/sign-out
GET  /console/                               start a call: the reason, the number dialled
POST /console/tickets                        issues a ticket → the call page
GET  /console/tickets/<id>                   the call code, the state, the check word, alerts
GET  /console/tickets/<id>/status.json       the same for console.js, polled every 2 s
POST /console/tickets/<id>/close             the agent hangs up
POST /console/tickets/<id>/reveal            the customer's app code / phrase (a connected call)

An agent sees only the tickets they issued (any other id is a 404). The sign-in lives in the
database (:mod:`callproof.sign_ins`): the cookie holds only a random token, so signing out, a new
password or ``agents disable`` ends it at once. The last few calls' codes are kept with the
sign-in, server-side (the tickets store just the code's hash), so the call page can show the code
again on a refresh; it is shown until the customer has typed it.

"Your recent calls" lists every ticket naming the agent, however it was issued (the console, the
issuer API, the CLI, the demo: :mod:`callproof.agent_calls`). The check word shows as the
customer sees it, in their page's language at the claim. A call started here may carry the
customer reference (typed, or handed over by the dialer in the address's fragment, which no
server sees), so the company's app shows the call and enrolled proofs can be revealed.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Blueprint,
    Response,
    g,
    make_response,
    render_template,
    request,
    session,
)
from flask_babel import gettext
from flask_wtf.csrf import CSRFError

from callproof import (
    ConfigError,
    InputError,
    NotFound,
    StoreError,
    TransitionRefused,
    counters,
    seclog,
)
from callproof.admin import Agent
from callproof.admin import check_text as _check_text
from callproof.agent_calls import CallFacts, call_facts, recent_calls
from callproof.enrollment import Revealed
from callproof.errors import RevealRefused
from callproof.issuer import TicketStatus, normalise_phone
from callproof.protocol import events, states
from callproof.protocol.languages import LANGUAGES
from callproof.sign_ins import SignIn

from . import signin
from .extensions import services
from .i18n import NATIVE_NAMES, company_here, current_language, redirect_keeping_language

bp = Blueprint("console", __name__, url_prefix="/console")
log = logging.getLogger("callproof.console")

#: How many calls' codes a sign-in keeps (newest first; server-side, with the sign-in).
KEPT_CALLS = 5
#: States after which the page stops polling: nothing more can happen to the ticket.
FINAL = frozenset({states.FAILED, states.CLOSED, states.EXPIRED, states.REVOKED})


def _(message: str, **values: Any) -> str:
    """gettext, typed (the catalogue extracts ``_("…")`` calls)."""
    return str(gettext(message, **values))


# --- helpers -------------------------------------------------------------------------------

def _page(template: str, here: tuple[str, dict[str, Any]], status: int = 200,
          **context: Any) -> Response:
    """A console page in the page's language (base.html needs ``company`` and ``here``); the
    company's name in that language too."""
    company = company_here(services().deployment.config.company)
    wave = services().flow.wave() if "agent" in context and context["agent"] else None
    return make_response(render_template(template, company=company, here=here, wave=wave,
                                         **context), status)


def _signed_in() -> Agent | None:
    """The signed-in agent, if the sign-in is recent and the agent still exists and is enabled.

    Anything else clears the session (a disabled agent is signed out on their next request).
    """
    return signin.signed_in(_SIGN_IN_PAGE, _sign_in(), services().admin.agent)


def _sign_in() -> SignIn | None:
    """This request's live agent sign-in (looked up once per request)."""
    if "cp_sign_in" not in g:
        g.cp_sign_in = services().sign_ins.check("agent", session.get("sign_in"))
    live: SignIn | None = g.cp_sign_in
    return live


def _calls() -> list[list[str]]:
    """[ticket_id, code_display, reason] of the calls started in this sign-in, newest first."""
    live = _sign_in()
    kept = live.data if live is not None else None
    if not isinstance(kept, list):
        return []
    return [c for c in kept
            if isinstance(c, list) and len(c) == 3 and all(isinstance(x, str) for x in c)]


def _keep_calls(calls: list[list[str]]) -> None:
    services().sign_ins.keep(session["sign_in"], calls)
    g.pop("cp_sign_in", None)


def _remember_call(ticket_id: str, code_display: str, reason: str) -> None:
    _keep_calls([[ticket_id, code_display, reason], *_calls()][:KEPT_CALLS])


def _forget_call(ticket_id: str) -> None:
    _keep_calls([c for c in _calls() if c[0] != ticket_id])


def _reason_texts() -> dict[str, str]:
    lang = current_language()
    return {r.code: r.text.get(lang, r.text["en"]) for r in services().admin.reasons()
            if r.enabled}


def _reason_text(code: str) -> str:
    """A reason's text in the page's language (withdrawn reasons too: old calls name them)."""
    lang = current_language()
    found = next((r for r in services().admin.reasons() if r.code == code), None)
    return found.text.get(lang, found.text["en"]) if found is not None else code


def state_label(state: str) -> str:
    """A call's state in two or three words, for the list of recent calls."""
    if state in states.UNCLAIMED:
        return _("waiting for the customer")
    if state in (states.CLAIMED, states.NUMBER_CONFIRMED):
        return _("customer checking")
    if state == states.VERIFIED:
        return _("confirmed")
    if state == states.FAILED:
        return _("check failed")
    if state == states.CLOSED:
        return _("closed")
    if state == states.EXPIRED:
        return _("expired")
    return _("withdrawn")


def _own_status(ticket_id: str, agent: Agent) -> TicketStatus | None:
    """The ticket's status if this agent issued it; None for any other (or unknown) ticket."""
    if len(ticket_id) > 64:
        return None
    try:
        status = services().issuer.status(ticket_id)
    except NotFound:
        return None
    return status if status.agent_id == agent.agent_id else None


# --- what the agent reads ------------------------------------------------------------------

def state_message(status: TicketStatus) -> str:
    """One or two short sentences: where the call is and what the agent does next."""
    s = status.state
    if s == states.ISSUED:
        return _("Read the call code to the customer. This page changes when they type it.")
    if s == states.CONNECTED:
        return _("The customer picked up. Read the call code to them.")
    if s == states.CLAIMED and status.has_number:
        return _("The customer has typed the code. They are checking the phone number.")
    if s == states.CLAIMED:
        return _("The customer has typed the code.")
    if s == states.NUMBER_CONFIRMED:
        return _("The customer has confirmed the phone number.")
    if s == states.VERIFIED:
        return _("The customer confirmed this call. You can go on.")
    if s == states.FAILED:
        return _("The check failed. The customer was told to hang up and call us on the "
                 "official number.")
    if s == states.CLOSED:
        return _("This call is closed.")
    if s == states.EXPIRED:
        return _("This call code has expired. Start a new call to get a new code.")
    if s == states.REVOKED:
        return _("This call code was withdrawn. Start a new call to get a new code.")
    return s  # pragma: no cover - every state is named above


def alert_text(alert_type: str) -> str:
    """An alert on the call page in words (the ticket's failure cause, or tampering)."""
    if alert_type == states.CAUSE_NUMBER_DENIED:
        return _("The customer said the phone is not theirs.")
    if alert_type == states.CAUSE_WRONG_WORD:
        return _("The customer tapped a different word.")
    if alert_type == states.CAUSE_CLAIMED_ELSEWHERE:
        return _("The code was entered on a second device.")
    if alert_type == events.TAMPERED:
        return _("The stored call record does not match. Tell the fraud desk.")
    if alert_type == events.CALLED_BACK:
        return _("The customer called back on the voice line and is being put through.")
    if alert_type == "ticket.called_back_unchecked":  # callproof.issuer.UNCHECKED_CALL_BACK
        return _("A caller with this code is being put through to your team by the voice "
                 "line. The caller was not checked: this call had no phone number.")
    return _("Alert: %(type)s", type=alert_type)


def _view(status: TicketStatus, facts: CallFacts | None = None) -> dict[str, Any]:
    """What the call page and status.json show, in the page's language; the check word as the
    customer sees it (their page's language at the claim), with the others beside it."""
    lang = current_language()
    word = status.check_word
    facts = facts if facts is not None else call_facts(services().deployment, status.ticket_id)
    word_lang = facts.claim_lang if facts is not None and facts.claim_lang else lang
    live = status.state in states.LIVE
    reveal = None
    if facts is not None and facts.offers_reveal and live:
        reveal = "ready" if facts.connected else "waiting"
    return {
        "ticket_id": status.ticket_id,
        "state": status.state,
        "message": state_message(status),
        "show_code": status.state in states.UNCLAIMED,
        "final": status.state in FINAL,
        "can_close": status.state != states.CLOSED,
        "reveal": reveal,
        "check_word": None if word is None else {
            **word.to_dict(word_lang),
            "lang": word_lang,
            "language": _("The customer's page is in %(language)s.",
                          language=NATIVE_NAMES[word_lang]),
            "others": [f"{word.text(other)} ({NATIVE_NAMES[other]})"
                       for other in LANGUAGES if word.text(other) != word.text(word_lang)],
        },
        "alerts": [{"type": a["type"], "at": a["at"], "text": alert_text(str(a["type"]))}
                   for a in status.alerts],
    }


# --- sign-in and sign-out ------------------------------------------------------------------

def _sign_in_page(error: str | None = None, status: int = 200, *,
                  typed_id: str = "", notice: str | None = None) -> Response:
    return _page("console/sign_in.html", ("console.sign_in", {}), status, error=error,
                 agent_id=typed_id, notice=notice)


_SIGN_IN_PAGE = signin.SignInPage(kind="agent", session_key="sign_in", id_field="agent_id",
                                  home="console.home", sign_in="console.sign_in",
                                  form=_sign_in_page)


@bp.get("/sign-in")
def sign_in() -> Response:
    """The sign-in form (or the console, when already signed in)."""
    return signin.show_form(_SIGN_IN_PAGE, _signed_in() is not None,
                            signed_out=_("You are signed out."))


@bp.post("/sign-in")
def sign_in_post() -> Response:
    """Sign an agent in with their id and password; failures count against the limits (per
    address and agent id, per address, per agent id: ``[limits] sign_in_*``)."""
    return signin.sign_in(_SIGN_IN_PAGE, _check_password, too_many=_too_many,
                          missing=_("Type your agent id and your password."),
                          wrong=_("The agent id or the password is not right."))


def _check_password(agent_id: str, password: str) -> str | None:
    return agent_id if services().passwords.check(agent_id, password) else None


@bp.post("/sign-out")
def sign_out() -> Response:
    """End the sign-in (and forget the kept calls), in the database: a copied cookie is dead."""
    return signin.sign_out(_SIGN_IN_PAGE)


# --- starting a call -----------------------------------------------------------------------

def _home(agent: Agent, status: int = 200, *, errors: dict[str, str] | None = None,
          form: dict[str, str] | None = None) -> Response:
    reasons = _reason_texts()
    # Every call of the agent, however it was issued (console, API, CLI, demo).
    calls = [{"ticket_id": c.ticket_id, "reason": _reason_text(c.reason),
              "time": c.issued_at.strftime("%H:%M"), "state": state_label(c.state)}
             for c in recent_calls(services().deployment, agent.agent_id)]
    # The voice line (spec/voice-line.md §4): "the customer called back" beside those calls.
    from callproof.voice.routes import called_back_tickets

    back = called_back_tickets(services().deployment, [c["ticket_id"] for c in calls])
    for c in calls:
        c["called_back"] = "yes" if c["ticket_id"] in back else ""
    return _page("console/home.html", ("console.home", {}), status, agent=agent,
                 reasons=reasons, calls=calls, errors=errors or {}, form=form or {})


@bp.get("/")
def home() -> Response:
    """Start a call: the reason and the number dialled, and the last calls."""
    agent = _signed_in()
    if agent is None:
        return redirect_keeping_language("console.sign_in")
    return _home(agent)


@bp.post("/tickets")
def issue() -> Response:
    """Issue a ticket for the call being started → the call page."""
    agent = _signed_in()
    if agent is None:
        return redirect_keeping_language("console.sign_in")
    reason = request.form.get("reason", "")[:64]
    phone = request.form.get("phone", "").strip()[:32]
    customer = request.form.get("customer", "").strip()[:300]
    form = {"reason": reason, "phone": phone, "customer": customer}
    errors = {}
    if reason not in _reason_texts():
        errors["reason"] = _("Choose the reason for the call.")
    if customer:
        try:
            _check_text(customer, "the customer reference", 256)
        except InputError:
            errors["customer"] = _("The customer reference is at most 256 letters, digits or "
                                   "signs, from the customer record or the dialer.")
    if phone:
        try:
            normalise_phone(phone)
        except InputError:
            errors["phone"] = _("Type the number in international form, like +886912345678.")
    if errors:
        return _home(agent, 400, errors=errors, form=form)
    if not counters.take_console_ticket(services().deployment, agent.agent_id):
        limit = services().deployment.config.limits.console_tickets_per_agent_minute
        response = _home(agent, 429, errors={"issue": _(
            "You started %(count)s calls in the last minute. Wait a minute, then start the "
            "next one.", count=limit)}, form=form)
        response.headers["Retry-After"] = "60"
        return response
    try:
        call = services().issuer.issue(agent_id=agent.agent_id, reason=reason,
                                       phone=phone or None, customer_ref=customer or None)
    except InputError:  # disabled in the meantime
        return _home(agent, 400, errors={"reason": _("Choose the reason for the call.")},
                     form=form)
    except ConfigError:
        log.exception("cannot issue a ticket")
        return _home(agent, 503, errors={"issue": _(
            "Calls cannot be started right now. Tell your administrator.")}, form=form)
    _remember_call(call.ticket_id, call.code_display, reason)
    log.info("console issued %s for %s", call.ticket_id, agent.agent_id)
    return redirect_keeping_language("console.ticket", ticket_id=call.ticket_id)


# --- the call ------------------------------------------------------------------------------

@bp.get("/tickets/<ticket_id>")
def ticket(ticket_id: str) -> Response:
    """The call page: the call code until it is typed, the state, the check word, alerts."""
    agent = _signed_in()
    if agent is None:
        return redirect_keeping_language("console.sign_in")
    status = _own_status(ticket_id, agent)
    if status is None:
        return _not_found(agent)
    return _ticket_page(agent, status)


def _ticket_page(agent: Agent, status: TicketStatus, http_status: int = 200,
                 **context: Any) -> Response:
    """The call page (``revealed`` / ``reveal_error`` after a reveal)."""
    ticket_id = status.ticket_id
    kept = next((c for c in _calls() if c[0] == ticket_id), None)
    facts = call_facts(services().deployment, ticket_id)
    reason = _reason_text(facts.reason) if facts is not None else None
    return _page("console/ticket.html", ("console.ticket", {"ticket_id": ticket_id}),
                 http_status, agent=agent, view=_view(status, facts),
                 code=kept[1] if kept else None, reason=reason,
                 customer=facts is not None and facts.customer, **context)


@bp.get("/tickets/<ticket_id>/status.json")
def status_json(ticket_id: str) -> Response:
    """The call page's content as JSON, for console.js to poll."""
    agent = _signed_in()
    if agent is None:
        return make_response({"error": "signed_out",
                              "message": _("You are signed out. Sign in again.")}, 401)
    status = _own_status(ticket_id, agent)
    if status is None:
        return make_response({"error": "not_found", "message": "no such call"}, 404)
    return make_response(_view(status), 200)


@bp.post("/tickets/<ticket_id>/close")
def close(ticket_id: str) -> Response:
    """The agent hung up: close the ticket (already closed is fine)."""
    agent = _signed_in()
    if agent is None:
        return redirect_keeping_language("console.sign_in")
    if _own_status(ticket_id, agent) is None:
        return _not_found(agent)
    try:
        services().issuer.close(ticket_id)
    except TransitionRefused:
        pass  # already closed: the page shows it
    _forget_call(ticket_id)
    return redirect_keeping_language("console.ticket", ticket_id=ticket_id)


# --- reveal: the customer's app code and phrase (spec/enrolled-proofs.md §5) ----------------

def reveal_refusal(reason: str) -> str:
    """Why nothing was revealed, in words for the agent."""
    if reason == "not_connected":
        return _("Only during the call: the dialer has not reported this call connected yet.")
    if reason == "agent_cap":
        return _("You have shown app codes and phrases too often in the last hour. Tell your "
                 "supervisor.")
    if reason == "customer_cap":
        return _("This customer's app code and phrase were shown too often in the last hour. "
                 "Tell the fraud desk.")
    if reason == "not_enrolled":
        return _("This customer has no authenticator app or call phrase set up.")
    if reason == "no_customer":
        return _("This call names no customer. Start calls with the customer reference.")
    if reason == "forgotten":
        return _("This customer's data was deleted: nothing is left to show.")
    return _("This call is over: nothing is shown for it.")


def _revealed(shown: Revealed) -> dict[str, Any]:
    """What the agent reads out, grouped for reading; times in UTC, like the rest of the
    console."""
    def grouped(code: str | None) -> str | None:
        return f"{code[:3]} {code[3:]}" if code else None

    def clock(at: Any) -> str | None:
        return at.strftime("%H:%M:%S") if at is not None else None

    return {"app_code": grouped(shown.app_code), "valid_for": shown.app_code_valid_for,
            "until": clock(shown.app_code_until), "next_code": grouped(shown.next_app_code),
            "next_until": clock(shown.next_app_code_until), "phrase": shown.phrase}


@bp.post("/tickets/<ticket_id>/reveal")
def reveal(ticket_id: str) -> Response:
    """Show the customer's app code and/or phrase on this page, once: only the agent of a
    connected call, within the hourly caps; every reveal is logged (and nothing kept: a reload
    asks again, and counts again)."""
    agent = _signed_in()
    if agent is None:
        return redirect_keeping_language("console.sign_in")
    status = _own_status(ticket_id, agent)
    if status is None:
        return _not_found(agent)
    try:
        shown = services().enrolled.reveal(ticket_id, agent_id=agent.agent_id)
    except RevealRefused as e:
        seclog.event("reveal.refused", kind="agent", user_id=agent.agent_id,
                     ticket_id=ticket_id, reason=e.reason)
        return _ticket_page(agent, status, 409, reveal_error=reveal_refusal(str(e.reason)))
    except NotFound:
        return _not_found(agent)
    except ConfigError:
        log.error("cannot reveal: the seal key is not available")
        return _ticket_page(agent, status, 503, reveal_error=_(
            "The app code and the phrase cannot be shown right now. Tell your administrator."))
    seclog.event("reveal", kind="agent", user_id=agent.agent_id, ticket_id=ticket_id)
    response = _ticket_page(agent, status, revealed=_revealed(shown))
    response.headers["Cache-Control"] = "no-store"  # the code and the phrase stay nowhere
    return response


def _not_found(agent: Agent) -> Response:
    return _page("console/problem.html", ("console.home", {}), 404, agent=agent,
                 title=_("Call not found"),
                 message=_("There is no call with this address among your calls."))


# --- errors on console pages ---------------------------------------------------------------

@bp.errorhandler(CSRFError)
def _csrf_error(_e: CSRFError) -> Response:
    if request.endpoint == "console.sign_in_post":
        return _sign_in_page(_("This page was open too long. Sign in again."), 400)
    return _page("console/problem.html", ("console.home", {}), 400, agent=None,
                 title=_("This page was open too long"),
                 message=_("Nothing was changed. Go back to the console and try again."))


@bp.errorhandler(429)
def _too_many(_e: Exception) -> Response:
    return _sign_in_page(_("Too many failed sign-ins. Wait 15 minutes, then try again."), 429,
                         typed_id=signin.typed_id(_SIGN_IN_PAGE))


@bp.errorhandler(StoreError)
def _store_down(_e: StoreError) -> Response:
    log.error("the database is unavailable")
    if request.endpoint == "console.status_json":
        return make_response({"error": "unavailable", "message": "try again shortly"}, 503)
    return _page("console/problem.html", ("console.home", {}), 503, agent=None,
                 title=_("The console is not available"),
                 message=_("Try again in a minute. If it goes on, tell your administrator."))
