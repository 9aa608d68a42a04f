"""The fraud desk (issue #6): the fraud team watches alerts live, reads the scam reports, and takes
the facts to the police.

GET  /fraud/sign-in                 the desk's own sign-in (desk users, not agents)
POST /fraud/sign-in                 failed sign-ins are limited per client and per user id
POST /fraud/sign-out
GET  /fraud/                        live alerts, failed lookups per hour, the webhook's status
GET  /fraud/alerts.json?after=IDX   alerts newer than IDX, for fraud.js (polled every 3 s)
GET  /fraud/alerts/IDX               one alert: the story of its ticket, in words; who
                                    acknowledged it and to whom it is assigned
POST /fraud/alerts/IDX/acknowledge  acknowledge it (a desk.alert_acknowledged event)
POST /fraud/alerts/IDX/assign       assign it to a desk user (a desk.alert_assigned event)
GET  /fraud/reports?days=1|7|30     reports by reported number and by script, and each report
GET  /fraud/reports/ID              one report, with the free text the customer wrote (while it
                                    is kept: limits.report_text_days)
GET  /fraud/police?days=1|7|30      the facts a police report needs, printable
GET  /fraud/police.csv?days=1|7|30  the same reports as CSV

A desk session and an agent session use different keys: an agent cannot open the desk, and a desk
user cannot use the console. Nothing here identifies a customer: alerts carry the ticket, the
agent and the reason; reports carry the caller's number (the scammer's) and the scripts, and a
report's own page shows the free text the customer wrote (escaped; never in the police facts or
their CSV) until housekeeping forgets it. Times are shown in the company's time zone
(``[company] time_zone``) with its abbreviation; the police CSV keeps UTC. Every desk response
is ``Cache-Control: no-store``.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    make_response,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext, ngettext
from flask_wtf.csrf import CSRFError

from callproof import ConfigError, StoreError, seclog
from callproof.desk_users import DeskUser
from callproof.errors import NotFound
from callproof.fraud import WINDOWS, Alert, AlertWork, HourCount, StoryStep
from callproof.protocol.clock import from_epoch
from callproof.webhook import WebhookStatus

from . import signin
from .extensions import services
from .i18n import current_language, redirect_keeping_language

bp = Blueprint("fraud", __name__, url_prefix="/fraud")
log = logging.getLogger("callproof.fraud")

#: The session key of a desk sign-in's token (the console's is ``sign_in``); the sign-in itself
#: lives in the database (:mod:`callproof.sign_ins`): sign-out, a new password or ``desk
#: disable`` ends it at once, and it lasts 12 hours at most.
TOKEN_KEY = "desk_sign_in"  # noqa: S105 - a session key name, not a token
#: Alerts on the desk page (fraud.js adds newer ones as they come).
SHOWN_ALERTS = 50
#: How often fraud.js asks for new alerts.
POLL_MS = 3000
_DEFAULT_DAYS = 7


def _(message: str, **values: Any) -> str:
    """gettext, typed (the catalogue extracts ``_("…")`` calls)."""
    return str(gettext(message, **values))


# --- words for what the desk shows -----------------------------------------------------------

def kind_text(kind: str) -> str:
    """An alert's kind in words."""
    texts = {
        "number_denied": _("A customer said “No”: the phone is not theirs"),
        "word_wrong": _("A customer tapped a wrong check word"),
        "claimed_elsewhere": _("A call code was typed on a second device"),
        "budget_tripped": _("Too many failed lookups: lookups are paused"),
        "reveal_unconnected": _("An app code or phrase was revealed without a connected call"),
        "reveal_capped": _("A reveal was refused: the hourly limit was reached"),
        "tampered": _("A stored call record does not match its signature"),
        "route_changed": _("An agent's voice-line transfer target was changed"),
    }
    return texts.get(kind, kind)


def script_texts() -> dict[str, str]:
    """What the caller asked for, as the desk names each script."""
    return {
        "refund": _("Refund or double charge"),
        "verification_code": _("Verification code"),
        "card_or_bank": _("Card or bank details"),
        "screen_sharing": _("Screen sharing"),
        "transfer_or_loan": _("Transfer or loan"),
        "install_app": _("Installing an app"),
        "open_link": _("Opening a link"),
    }


def _zone() -> ZoneInfo:
    """The company's time zone (config.toml ``[company] time_zone``, else its country's)."""
    return services().deployment.config.company.zone


def when(at: datetime | None) -> str:
    """A time as the desk shows it: in the company's time zone with its abbreviation (e.g.
    "2026-12-05 18:03 CST"), the same in every language, to the minute."""
    if at is None:
        return "–"
    return at.astimezone(_zone()).strftime("%Y-%m-%d %H:%M %Z")


def hour_text(at: datetime) -> str:
    """The start of an hour in the company's time zone, as the chart labels it."""
    return at.astimezone(_zone()).strftime("%H:%M")


def zone_text() -> str:
    """What the desk's pages say about their times: the zone's name and its UTC offset."""
    zone = _zone()
    offset = datetime.now(zone).strftime("%z")
    return f"{zone.key} (UTC{offset[:3]}:{offset[3:]})"


def when_iso(at: datetime) -> str:
    """A time as fraud.js reads it: ISO 8601 in UTC, to the second."""
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch_text(value: int | str) -> str:
    """An epoch value of an alert's details, as a time."""
    try:
        return when(from_epoch(int(value)))
    except (TypeError, ValueError, OverflowError):
        return str(value)


def details_text(alert: Alert) -> str:
    """An alert's details in words (they never hold customer data)."""
    d: Mapping[str, int | str] = alert.details
    if alert.kind == "budget_tripped" and "count" in d and "budget" in d:
        text = _("%(count)s failed lookups in one minute (the budget is %(budget)s).",
                 count=d["count"], budget=d["budget"])
        if "open_until" in d:
            text += " " + _("Lookups paused until %(time)s.",
                            time=_epoch_text(d["open_until"]))
        return text
    parts = []
    if alert.kind == "reveal_capped" and "cap" in d:
        parts.append(_("The agent's hourly limit.") if d["cap"] == "agent_cap" else
                     _("The customer's hourly limit.") if d["cap"] == "customer_cap" else
                     str(d["cap"]))
    if alert.kind == "reveal_unconnected" and "allowed" in d:
        parts.append(_("Shown anyway: allowed for a test.") if d["allowed"] else
                     _("Nothing was shown."))
    if "api_key" in d:
        parts.append(_("Through API key %(key)s.", key=d["api_key"]))
    if alert.kind == "route_changed":  # the voice line: where verified customers now go
        parts.append(_("Transfer to: %(target)s. Queue: %(queue)s.",
                       target=d.get("transfer_target") or "—",
                       queue=d.get("queue") or "—"))
    if alert.kind == "tampered" and "check" in d:
        parts.append(_("Failed check: %(check)s.", check=d["check"]))
    return " ".join(parts)


def _reason_texts() -> dict[str, str]:
    lang = current_language()
    return {r.code: r.text.get(lang, r.text["en"]) for r in services().admin.reasons()}


def work_text(work: AlertWork | None) -> str:
    """What the desk did with an alert, in words (acknowledged by whom, assigned to whom)."""
    if work is None:
        return _("New")
    if work.acknowledged_by and work.assignee:  # one sentence: each language has its own stop
        return _("Acknowledged by %(user)s; assigned to %(assignee)s",
                 user=work.acknowledged_by, assignee=work.assignee)
    if work.acknowledged_by:
        return _("Acknowledged by %(user)s", user=work.acknowledged_by)
    if work.assignee:
        return _("Assigned to %(user)s", user=work.assignee)
    return _("New")


def alert_view(alert: Alert, reasons: Mapping[str, str],
               work: AlertWork | None = None) -> dict[str, Any]:
    """What the desk shows of one alert (the page's table row, and alerts.json)."""
    return {
        "url": url_for("fraud.alert_page", idx=alert.idx, lang=current_language()),
        "work_text": work_text(work),
        "idx": alert.idx,
        "kind": alert.kind,
        "kind_text": kind_text(alert.kind),
        "at": when_iso(alert.at),
        "at_text": when(alert.at),
        "ticket_id": alert.ticket_id,
        "agent_id": alert.agent_id,
        "reason": alert.reason,
        "reason_text": reasons.get(alert.reason, alert.reason) if alert.reason else None,
        "details_text": details_text(alert),
    }


#: The bar chart's geometry (SVG user units): bars, gaps, plot height, margins.
_BAR, _GAP, _PLOT_H, _TOP, _AXIS_H, _SIDE = 20, 4, 150, 20, 30, 16


def lookup_chart(hours: list[HourCount]) -> dict[str, Any]:
    """The failed-lookups chart: bars (SVG attributes, no inline styles), labels and a summary."""
    most = max((h.count for h in hours), default=0)
    scale = _PLOT_H / most if most else 0.0
    bars = []
    for i, h in enumerate(hours):
        height = round(h.count * scale, 1) if h.count else 0.0
        if h.count and height < 2:
            height = 2.0  # a non-zero hour stays visible
        x = _SIDE + i * (_BAR + _GAP)
        bars.append({"x": x, "y": _TOP + _PLOT_H - height, "height": height, "width": _BAR,
                     "count": h.count, "hour": hour_text(h.hour),
                     "label": _("%(hour)s: %(count)s", hour=when(h.hour), count=h.count),
                     "tick": i % 6 == 0, "cx": x + _BAR / 2})
    total = sum(h.count for h in hours)
    peak = max(hours, key=lambda h: (h.count, h.hour), default=None)
    if peak is None or not total:
        summary = _("No failed lookups in the last 24 hours.")
    else:
        summary = str(ngettext(
            "%(num)s failed lookup in the last 24 hours. The most in one hour: %(most)s, in "
            "the hour from %(hour)s.",
            "%(num)s failed lookups in the last 24 hours. The most in one hour: %(most)s, in "
            "the hour from %(hour)s.", total, most=peak.count, hour=when(peak.hour)))
    width = 2 * _SIDE + len(hours) * (_BAR + _GAP) - _GAP
    return {"bars": bars, "total": total, "most": most, "summary": summary,
            "width": width, "height": _TOP + _PLOT_H + _AXIS_H, "base": _TOP + _PLOT_H,
            "label_y": _TOP + _PLOT_H + 20, "hours": hours}


# --- helpers -------------------------------------------------------------------------------

def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _page(template: str, here: tuple[str, dict[str, Any]], status: int = 200,
          **context: Any) -> Response:
    """A desk page in the page's language (base.html needs ``company`` and ``here``)."""
    company = services().deployment.config.company
    context.setdefault("user", None)
    context.setdefault("section", None)
    response = make_response(render_template(
        template, company=company, here=here, when=when, when_iso=when_iso,
        windows=WINDOWS, zone_text=zone_text(), **context), status)
    return _no_store(response)


def _signed_in() -> DeskUser | None:
    """The signed-in desk user, if the sign-in is recent and the user still exists and is
    enabled. Anything else ends the desk sign-in (a disabled user is signed out at once)."""
    live = services().sign_ins.check("desk", session.get(TOKEN_KEY))
    return signin.signed_in(_SIGN_IN_PAGE, live, services().desk_users.get)


def _days() -> int | None:
    """The window asked for (7 days when not asked); None when it is not one the desk offers."""
    raw = request.args.get("days", "")
    if raw == "":
        return _DEFAULT_DAYS
    if raw.isascii() and raw.isdigit() and int(raw) in WINDOWS:
        return int(raw)
    return None


def _with_window(endpoint: str) -> Callable[[Callable[[DeskUser, int], Response]],
                                             Callable[[], Response]]:
    """A view of the window asked for (``?days=``), called as ``view(user, days)``: signed
    out, the sign-in page instead; a window the desk does not offer, a 400 that links
    ``endpoint``'s windows."""

    def decorate(view: Callable[[DeskUser, int], Response]) -> Callable[[], Response]:
        @functools.wraps(view)
        def checked() -> Response:
            user = _signed_in()
            if user is None:
                return redirect_keeping_language("fraud.sign_in")
            days = _days()
            if days is None:
                return _bad_window(user, endpoint)
            return view(user, days)

        return checked

    return decorate


def _problem(user: DeskUser | None, title: str, message: str, status: int, *,
             windows_for: str | None = None) -> Response:
    return _page("fraud/problem.html", ("fraud.home", {}), status, user=user, title=title,
                 message=message, windows_for=windows_for)


def _bad_window(user: DeskUser, endpoint: str) -> Response:
    return _problem(user, _("Choose 1, 7 or 30 days"),
                    _("The desk shows the last 1, 7 or 30 days. Choose one of them."), 400,
                    windows_for=endpoint)


# --- sign-in and sign-out ------------------------------------------------------------------

def _sign_in_page(error: str | None = None, status: int = 200, *,
                  typed_id: str = "", notice: str | None = None) -> Response:
    return _page("fraud/sign_in.html", ("fraud.sign_in", {}), status, error=error,
                 user_id=typed_id, notice=notice)


_SIGN_IN_PAGE = signin.SignInPage(kind="desk", session_key=TOKEN_KEY, id_field="user_id",
                                  home="fraud.home", sign_in="fraud.sign_in",
                                  form=_sign_in_page)


@bp.get("/sign-in")
def sign_in() -> Response:
    """The desk's sign-in form (or the desk, when already signed in)."""
    return signin.show_form(_SIGN_IN_PAGE, _signed_in() is not None,
                            signed_out=_("You are signed out."))


@bp.post("/sign-in")
def sign_in_post() -> Response:
    """Sign a desk user in; failures count against the limits (per address and user id, per
    address, per user id: ``[limits] sign_in_*``, in the database). Any console sign-in in
    this browser ends."""
    return signin.sign_in(_SIGN_IN_PAGE, _check_password, too_many=_too_many,
                          missing=_("Type your user id and your password."),
                          wrong=_("The user id or the password is not right."))


def _check_password(user_id: str, password: str) -> str | None:
    user = services().desk_users.check(user_id, password)
    return user.user_id if user is not None else None


@bp.post("/sign-out")
def sign_out() -> Response:
    """End the desk sign-in, in the database: a copied cookie is dead."""
    return signin.sign_out(_SIGN_IN_PAGE)


# --- the live desk -------------------------------------------------------------------------

@bp.get("/")
def home() -> Response:
    """The live desk: the newest alerts, failed lookups per hour, the webhook's status."""
    user = _signed_in()
    if user is None:
        return redirect_keeping_language("fraud.sign_in")
    desk = services().desk
    reasons = _reason_texts()
    found = desk.alerts(limit=SHOWN_ALERTS)
    work = desk.work([a.idx for a in found])
    alerts = [alert_view(a, reasons, work.get(a.idx)) for a in found]
    chart = lookup_chart(desk.failed_lookups_per_hour(hours=24))
    webhook, webhook_broken = _webhook_status()
    last = max((a["idx"] for a in alerts), default=None)
    return _page("fraud/home.html", ("fraud.home", {}), user=user, section="home",
                 alerts=alerts, chart=chart, webhook=webhook,
                 webhook_broken=webhook_broken, last=last, poll_ms=POLL_MS,
                 shown=SHOWN_ALERTS)


def _webhook_status() -> tuple[WebhookStatus | None, bool]:
    """The webhook's status when one is configured; (None, True) when its setup is broken."""
    hook = services().webhook
    try:
        return (hook.status() if hook.configured else None), False
    except ConfigError as e:
        log.warning("the alert webhook is misconfigured: %s", e.__class__.__name__)
        return None, True


@bp.get("/alerts.json")
def alerts_json() -> Response:
    """Alerts newer than ``after``, for fraud.js to poll, with a line for screen readers."""
    user = _signed_in()
    if user is None:
        return _no_store(make_response(
            {"error": "signed_out", "message": _("You are signed out. Sign in again.")}, 401))
    raw = request.args.get("after", "")
    after: int | None = None
    if raw:
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
            return _no_store(make_response(
                {"error": "bad_after", "message": "after must be an alert's index"}, 400))
        after = int(raw)
    reasons = _reason_texts()
    desk = services().desk
    new = desk.alerts(after=after, limit=SHOWN_ALERTS)
    work = desk.work([a.idx for a in new])
    found = [alert_view(a, reasons, work.get(a.idx)) for a in new]
    last = max((a["idx"] for a in found), default=after)
    announcement = ""
    if found:
        newest = found[0]
        announcement = _("New alert: %(kind)s, %(time)s.", kind=newest["kind_text"],
                         time=newest["at_text"]) if len(found) == 1 else \
            _("%(n)s new alerts. The newest: %(kind)s, %(time)s.", n=len(found),
              kind=newest["kind_text"], time=newest["at_text"])
    return _no_store(make_response({"alerts": found, "last": last,
                                    "announcement": announcement}, 200))


# --- one alert: its ticket's story, acknowledge, assign --------------------------------------

def _cause_text(cause: str) -> str:
    return {"number_denied": _("the customer said the phone is not theirs"),
            "wrong_word": _("a wrong check word"),
            "claimed_elsewhere": _("the code was typed on a second device")}.get(cause, cause)


def story_text(step: StoryStep, alert: Alert, reasons: Mapping[str, str]) -> str:
    """One event of a ticket's story in words, in the desk user's language."""
    d = step.details
    if step.type == "ticket.issued":
        reason = reasons.get(alert.reason or "", alert.reason or "–")
        return _("Agent %(agent)s started the call. Reason: %(reason)s.",
                 agent=alert.agent_id or "–", reason=reason)
    if step.type == "ticket.failed":
        return _("The check failed: %(cause)s.", cause=_cause_text(str(d.get("cause", ""))))
    if step.type == "alert.tampered":
        return kind_text("tampered") + " " + _("Failed check: %(check)s.",
                                               check=d.get("check", "–"))
    texts = {
        "ticket.connected": _("The customer picked up."),
        "ticket.claimed": _("The customer typed the call code on the check page."),
        "ticket.number_confirmed": _("The customer said the phone number is theirs."),
        "ticket.number_denied": _("The customer said “No”: the phone is not theirs."),
        "ticket.word_wrong": _("The customer tapped a wrong check word."),
        "ticket.verified": _("The customer tapped the right check word: the call was "
                             "confirmed."),
        "ticket.closed": _("The call ended."),
        "ticket.revoked": _("The call was withdrawn."),
        "alert.claimed_elsewhere": _("The call code was typed on a second device."),
        "reveal.app_code": _("The agent showed the customer's app code."),
        "reveal.phrase": _("The agent showed the customer's shared phrase."),
        "alert.reveal_unconnected": kind_text("reveal_unconnected"),
        "alert.reveal_capped": kind_text("reveal_capped"),
    }
    return texts.get(step.type, step.type)


def _with_alert(view: Callable[[DeskUser, Alert], Response]) -> Callable[[int], Response]:
    """A view of alert ``idx`` (the route's), called as ``view(user, alert)``: signed out, the
    sign-in page instead; no such alert, the desk's 404."""

    @functools.wraps(view)
    def checked(idx: int) -> Response:
        user = _signed_in()
        if user is None:
            return redirect_keeping_language("fraud.sign_in")
        alert = services().desk.alert(idx) if 0 <= idx <= 2**62 else None
        if alert is None:
            return _problem(user, _("Alert not found"),
                            _("There is no alert with this number. Go back to the live "
                              "alerts."), 404)
        return view(user, alert)

    return checked


@bp.get("/alerts/<int:idx>")
@_with_alert
def alert_page(user: DeskUser, alert: Alert) -> Response:
    """One alert: what happened, the story of its ticket in order, and what the desk did."""
    idx = alert.idx
    desk = services().desk
    reasons = _reason_texts()
    work = desk.work([idx]).get(idx)
    story = [{"at": s.at, "text": story_text(s, alert, reasons), "idx": s.idx,
              "this": s.idx == alert.idx}
             for s in (desk.story(alert.ticket_id) if alert.ticket_id else [])]
    colleagues = [u for u in services().desk_users.list() if u.enabled]
    return _page("fraud/alert.html", ("fraud.alert_page", {"idx": idx}), user=user,
                 section="home", alert=alert_view(alert, reasons, work), raw=alert,
                 work=work, story=story, colleagues=colleagues,
                 done=request.args.get("done", ""))


@bp.post("/alerts/<int:idx>/acknowledge")
@_with_alert
def acknowledge(user: DeskUser, alert: Alert) -> Response:
    """Acknowledge an alert; the event record says who (Post/Redirect/Get)."""
    services().desk.acknowledge(alert.idx, user.user_id)
    log.info("fraud desk: %s acknowledged alert %d", user.user_id, alert.idx)
    return redirect_keeping_language("fraud.alert_page", idx=alert.idx, done="acknowledged")


@bp.post("/alerts/<int:idx>/assign")
@_with_alert
def assign(user: DeskUser, alert: Alert) -> Response:
    """Assign an alert to a desk user; the event record says who assigned it to whom."""
    assignee = request.form.get("assignee", "").strip()[:64]
    try:
        services().desk.assign(alert.idx, user.user_id, assignee)
    except NotFound:
        return _problem(user, _("Choose a desk user"),
                        _("Assign the alert to one of the desk's users. Nothing was changed."),
                        400)
    log.info("fraud desk: %s assigned alert %d", user.user_id, alert.idx)
    return redirect_keeping_language("fraud.alert_page", idx=alert.idx, done="assigned")


# --- reports and the police ----------------------------------------------------------------

@bp.get("/reports")
@_with_window("fraud.reports")
def reports(user: DeskUser, days: int) -> Response:
    """Scam reports of the window, by reported number and by script."""
    summary = services().desk.reports(days=days)
    listed = services().desk.recent_reports(days=days)
    return _page("fraud/reports.html", ("fraud.reports", {"days": days}), user=user,
                 section="reports", days=days, summary=summary, scripts=script_texts(),
                 listed=listed)


@bp.get("/reports/<report_id>")
def report_page(report_id: str) -> Response:
    """One scam report, with the free text its customer wrote (escaped) while it is kept."""
    user = _signed_in()
    if user is None:
        return redirect_keeping_language("fraud.sign_in")
    report = services().desk.report(report_id)
    if report is None:
        return _problem(user, _("Report not found"),
                        _("There is no scam report at this address."), 404)
    log.info("fraud desk: %s opened report %s", user.user_id, report.report_id)
    return _page("fraud/report.html", ("fraud.report_page", {"report_id": report.report_id}),
                 user=user, section="reports", report=report, scripts=script_texts(),
                 removed=services().deployment.now() - report.at
                 >= timedelta(days=report.text_days))


@bp.get("/police")
@_with_window("fraud.police")
def police(user: DeskUser, days: int) -> Response:
    """The facts a police report needs, printable."""
    facts = services().desk.police_facts(days=days)
    kinds = [(kind_text(k), n) for k, n in facts.alerts_by_kind.items()]
    return _page("fraud/police.html", ("fraud.police", {"days": days}), user=user,
                 section="police", days=days, facts=facts, scripts=script_texts(),
                 kinds=kinds)


@bp.get("/police.csv")
@_with_window("fraud.police")
def police_csv(user: DeskUser, days: int) -> Response:
    """The window's reports as a CSV download (logged)."""
    dep = services().deployment
    text = services().desk.police_csv(days=days)
    issuer = re.sub(r"[^A-Za-z0-9._-]+", "-", dep.issuer_id).strip("-.") or "callproof"
    name = f"scam-reports-{issuer}-{days}d-{dep.now().strftime('%Y%m%d-%H%M')}.csv"
    response = make_response(text.encode("utf-8"), 200)
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    seclog.event("desk.export", user_id=user.user_id, days=days, what="police_csv")
    return _no_store(response)


# --- errors on desk pages ------------------------------------------------------------------

@bp.route("/<path:_rest>")
def not_found(_rest: str) -> Response:
    """Any other path under /fraud: the desk's own 404 page."""
    return _problem(_signed_in(), _("Page not found"),
                    _("There is no fraud desk page at this address."), 404)


@bp.errorhandler(CSRFError)
def _csrf_error(_e: CSRFError) -> Response:
    if request.endpoint == "fraud.sign_in_post":
        return _sign_in_page(_("This page was open too long. Sign in again."), 400)
    return _problem(None, _("This page was open too long"),
                    _("Nothing was changed. Go back to the fraud desk and try again."), 400)


@bp.errorhandler(429)
def _too_many(_e: Exception) -> Response:
    return _sign_in_page(_("Too many failed sign-ins. Wait 15 minutes, then try again."), 429,
                         typed_id=signin.typed_id(_SIGN_IN_PAGE))


@bp.errorhandler(StoreError)
def _store_down(_e: StoreError) -> Response:
    log.error("the database is unavailable")
    if request.endpoint == "fraud.alerts_json":
        return _no_store(make_response({"error": "unavailable",
                                        "message": "try again shortly"}, 503))
    return _problem(None, _("The fraud desk is not available"),
                    _("Try again in a minute. If it goes on, tell your administrator."), 503)


__all__ = ["bp"]
