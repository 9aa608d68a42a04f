"""The enrolment page (spec/enrolled-proofs.md §4): opened by the company's logged-in site.

GET  /enroll/<token>        a page with one button (opening a link uses nothing: link previews)
POST /enroll/<token>        uses the single-use token once and binds this visit to the customer
GET  /enroll/app            the QR code, the secret as text, and the box for ONE current code
POST /enroll/app/confirm    that code → the phrase step
POST /enroll/app/restart    a new QR code (replaces the earlier app enrolment)
GET  /enroll/phrase         the shared phrase (optional, with a way to skip)
POST /enroll/phrase         set it → done
GET  /enroll/done           what is set up now

The token is used once, by the button's POST: that stores the customer's handle in the signed
session under ``enroll`` with an expiry (the token's 15 minutes), never in a URL or a hidden
field, so the visit's later steps, reloads and language switches keep working. The pending app
secret is kept in the session sealed (AES-256-GCM under the deployment's seal key, the handle
as associated data), so that a reload shows the same QR code instead of replacing the one
already scanned. No personal data is shown or asked for.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import unicodedata
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import (
    Blueprint,
    Response,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError

from callproof import ConfigError
from callproof.enrollment import TOKEN_TTL_SECONDS, TotpEnrollment
from callproof.errors import EnrollmentError, PhraseRefused
from callproof.protocol.clock import to_epoch
from callproof.qr import qr_svg
from callproof.sealing import Sealer

from .extensions import services
from .i18n import company_here, current_language, hotline_text

bp = Blueprint("enroll", __name__, url_prefix="/enroll")
log = logging.getLogger("callproof.web")

_KEY = "enroll"  # the session member that binds this visit to one customer
_PURPOSE = "enroll-page"  # the sealed pending secret in the session, never the stored one
_MAX_PHRASE_INPUT = 256


# --- the visit ----------------------------------------------------------------------------


def _now() -> int:
    return to_epoch(services().deployment.now())


def _token_tag(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:32]


def _visit() -> dict[str, Any] | None:
    """This visit's binding, or None when there is none or it has expired."""
    found = session.get(_KEY)
    if not isinstance(found, dict) or not isinstance(found.get("h"), str):
        return None
    if not isinstance(found.get("exp"), int) or _now() >= found["exp"]:
        session.pop(_KEY, None)
        return None
    return found


def _save(visit: dict[str, Any]) -> None:
    session[_KEY] = visit
    session.modified = True


def _sealer() -> Sealer:
    return Sealer.from_data_dir(services().deployment.data_dir)


def _start_app(visit: dict[str, Any]) -> None:
    """A fresh app enrolment (pending); its URI kept sealed in the session for this visit."""
    enrolment = services().enrolled.enroll_totp(handle=visit["h"])
    blob = _sealer().seal(enrolment.otpauth_uri.encode("utf-8"),
                          issuer=services().deployment.issuer_id, handle=visit["h"],
                          purpose=_PURPOSE)
    visit["qr"] = base64.urlsafe_b64encode(blob).decode("ascii")
    visit["secret_shown"] = True
    _save(visit)


def _pending(visit: dict[str, Any]) -> TotpEnrollment | None:
    blob = visit.get("qr")
    if not isinstance(blob, str):
        return None
    try:
        uri = _sealer().open(base64.urlsafe_b64decode(blob.encode("ascii")),
                             issuer=services().deployment.issuer_id, handle=visit["h"],
                             purpose=_PURPOSE).decode("utf-8")
    except (ConfigError, ValueError):
        return None
    secret = parse_qs(urlsplit(uri).query).get("secret", [""])[0]
    return TotpEnrollment(uri, secret)


def _go(endpoint: str) -> Response:
    return make_response(redirect(url_for(endpoint, lang=current_language()), 303))


# --- pages --------------------------------------------------------------------------------


def _page(template: str, here: tuple[str, dict[str, Any]], status: int = 200,
          **context: Any) -> Response:
    company = company_here(services().deployment.config.company)
    response = make_response(render_template(
        template, company=company, here=here,
        hotline=hotline_text(company.country, company.hotline), **context), status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _refused(reason: str, here: tuple[str, dict[str, Any]]) -> Response:
    """The clear page for a link that is not valid, used, expired, or a visit that timed out."""
    log.info("enrolment page refused: %s", reason)
    status = 404 if reason == "token_unknown" else 410
    return _page("enroll/refused.html", here, status, reason=reason,
                 minutes=TOKEN_TTL_SECONDS // 60)


def _no_visit() -> Response:
    return _refused("visit_expired", ("enroll.app_step", {}))


@bp.get("/<token>")
def open_token(token: str) -> Response:
    """The link's page: a button that starts the set-up. Opening the link uses nothing — a link
    preview (a chat app, a mail scanner) must not use the single-use token up."""
    visit = _visit()
    if visit is not None and visit.get("t") == _token_tag(token):
        return _go("enroll.app_step")  # a reload or a language switch of this same visit
    return _page("enroll/start.html", ("enroll.open_token", {"token": token}),
                 token=token[:200])


@bp.post("/<token>")
def use_token(token: str) -> Response:
    """Use the single-use token and bind this visit to its customer → the app step."""
    here = ("enroll.open_token", {"token": token})
    visit = _visit()
    if visit is not None and visit.get("t") == _token_tag(token):
        return _go("enroll.app_step")  # the button pressed again in this same visit
    try:
        handle = services().enrolled.open_enrollment(token[:200])
    except EnrollmentError as e:
        return _refused(e.reason, here)
    visit = {"h": handle, "t": _token_tag(token), "exp": _now() + TOKEN_TTL_SECONDS}
    if services().enrolled.enrolled(handle=handle)["totp"] != "confirmed":
        _start_app(visit)  # a confirmed app stays until the customer asks to replace it
    _save(visit)
    return _go("enroll.app_step")


def _app_page(visit: dict[str, Any], error: str | None = None, status: int = 200) -> Response:
    pending = _pending(visit)
    have = services().enrolled.enrolled(handle=visit["h"])
    qr = None
    if pending is not None and have["totp"] == "pending":
        qr = qr_svg(pending.otpauth_uri, size="240", xmlns=False,
                    label=_("QR code to add %(company)s calls to your authenticator app",
                            company=company_here(services().deployment.config.company).name))
    return _page("enroll/app.html", ("enroll.app_step", {}), status, qr=qr,
                 secret=_grouped(pending.secret) if pending and qr else None,
                 otpauth=pending.otpauth_uri if pending and qr else None,
                 confirmed=have["totp"] == "confirmed", error=error)


def _grouped(secret: str) -> str:
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


@bp.get("/app")
def app_step() -> Response:
    """The app step: the QR code and the secret as text, and the box for one current code."""
    visit = _visit()
    if visit is None:
        return _no_visit()
    if visit.get("done"):
        return _go("enroll.done")
    return _app_page(visit)


@bp.post("/app/restart")
def app_restart() -> Response:
    """A new QR code, replacing the app enrolment begun earlier."""
    visit = _visit()
    if visit is None:
        return _no_visit()
    if visit.get("done"):
        return _go("enroll.done")  # a finished visit changes nothing more
    _start_app(visit)
    return _go("enroll.app_step")


_CONFIRM_ERRORS = {
    "wrong_code": lambda: _("That code does not match. Type the 6 digits the app shows now."),
    "code_replayed": lambda: _("That code was already used. Wait for the next code in the app "
                               "(a new one comes every 30 seconds) and type it."),
    "too_many_failures": lambda: _("Too many codes did not match. We made a new QR code. Remove "
                                   "the old entry from your app and scan this one."),
    "not_enrolled": lambda: _("We made a new QR code. Scan it with your app."),
}


@bp.post("/app/confirm")
def app_confirm() -> Response:
    """Confirm the app with one current code → the phrase step."""
    visit = _visit()
    if visit is None:
        return _no_visit()
    if visit.get("done"):
        return _go("enroll.done")  # a finished visit changes nothing more
    typed = unicodedata.normalize("NFKC", request.form.get("code", "")[:32])
    typed = "".join(typed.replace("-", " ").split())
    if not (len(typed) == 6 and typed.isascii() and typed.isdigit()):
        return _app_page(visit, _("Type the 6 digits the app shows now. Use digits only."), 400)
    try:
        services().enrolled.confirm_totp(typed, handle=visit["h"])
    except EnrollmentError as e:
        if e.reason in ("too_many_failures", "not_enrolled"):
            _start_app(visit)
        if e.reason == "forgotten":
            session.pop(_KEY, None)
            return _refused("visit_expired", ("enroll.app_step", {}))
        message = _CONFIRM_ERRORS.get(e.reason, _CONFIRM_ERRORS["wrong_code"])()
        return _app_page(visit, message, 400)
    visit.pop("qr", None)
    visit["app"] = True
    _save(visit)
    return _go("enroll.phrase_step")


_PHRASE_ERRORS = {
    "phrase_too_short": lambda: _("Your call phrase is too short. Use at least 4 characters."),
    "phrase_too_long": lambda: _("Your call phrase is too long. Use at most 64 characters."),
    "phrase_all_digits": lambda: _("Your call phrase cannot be only digits. Use words."),
    "phrase_card_like": lambda: _("Your call phrase looks like a card number. Never use card "
                                  "numbers. Use words."),
    "phrase_unprintable": lambda: _("Your call phrase has characters we cannot show. Use "
                                    "letters, digits and spaces."),
}


def _phrase_page(visit: dict[str, Any], error: str | None = None,
                 status: int = 200) -> Response:
    have = services().enrolled.enrolled(handle=visit["h"])
    return _page("enroll/phrase.html", ("enroll.phrase_step", {}), status, error=error,
                 app_done=bool(visit.get("app")), has_phrase=have["phrase"])


@bp.get("/phrase")
def phrase_step() -> Response:
    """The phrase step: set a shared call phrase, or skip it."""
    visit = _visit()
    if visit is None:
        return _no_visit()
    if visit.get("done"):
        return _go("enroll.done")
    return _phrase_page(visit)


@bp.post("/phrase")
def phrase_set() -> Response:
    """Set the call phrase → what is set up now."""
    visit = _visit()
    if visit is None:
        return _no_visit()
    if visit.get("done"):
        return _go("enroll.done")  # a finished visit changes nothing more
    phrase = request.form.get("phrase", "")[:_MAX_PHRASE_INPUT]
    try:
        services().enrolled.set_phrase(phrase, handle=visit["h"])
    except PhraseRefused as e:
        message = _PHRASE_ERRORS.get(e.reason, _PHRASE_ERRORS["phrase_unprintable"])()
        return _phrase_page(visit, message, 400)
    except EnrollmentError:
        session.pop(_KEY, None)
        return _refused("visit_expired", ("enroll.app_step", {}))
    visit["phrase"] = True
    _save(visit)
    return _go("enroll.done")


@bp.get("/done")
def done() -> Response:
    """What is set up now; the visit changes nothing more after it."""
    visit = _visit()
    if visit is None:
        return _no_visit()
    visit["done"] = True
    visit.pop("qr", None)
    _save(visit)
    have = services().enrolled.enrolled(handle=visit["h"])
    return _page("enroll/done.html", ("enroll.done", {}), have=have)


@bp.errorhandler(EnrollmentError)
def forgotten(_e: EnrollmentError) -> Response:
    """The customer was forgotten during the visit: nothing can be enrolled for them."""
    session.pop(_KEY, None)
    return _refused("visit_expired", ("enroll.app_step", {}))


@bp.errorhandler(CSRFError)
def csrf_error(_e: CSRFError) -> Response:
    """A form open longer than its CSRF token lives: the refused page."""
    return _page("enroll/refused.html", ("enroll.app_step", {}), 400, reason="csrf",
                 minutes=TOKEN_TTL_SECONDS // 60)
