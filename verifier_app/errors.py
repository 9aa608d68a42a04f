"""The app-wide error pages: what a visitor sees when a request fails and its blueprint has no
handler of its own for the failure.

A check under way that cannot go on shows the one failure page (the cause goes to the log); a
form that cannot be read goes back to the call code box with one sentence in the page's
language; our own outage (the database unavailable) has its own honest page and a 503 — never
the scam warning; 404, 405 and 500 are branded pages in the page's language. Flask asks a
blueprint's handlers first, so the issuer API keeps its JSON errors (``api.py``; any other path
under /api/ answers JSON here too), and the console, the fraud desk and the enrolment page keep
their own pages for the failures they handle.

    errors.init_app(app)      # in create_app, like flaskr's db.init_app
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, make_response, redirect, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed, NotFound

from callproof import StoreError
from callproof.notice import check_address

from . import api
from .extensions import services
from .i18n import company_here, hotline_text
from .public import check_failed, index_page

log = logging.getLogger("callproof.web")

#: The check page's steps after the code: a request to one of them that cannot go on fails the
#: check (the safe page) instead of asking for the code again.
_CHECK_STEPS = ("public.number", "public.word", "public.step", "public.unsure")
#: Where the people who are not customers work: their error pages do not speak of calls.
_STAFF = ("console", "fraud", "enroll")


def _page(template: str, status: int, **context: Any) -> Response:
    company = company_here(services().deployment.config.company)
    return make_response(render_template(
        template, company=company, here=(None, {}) if request.method == "GET" else
        ("public.index", {}),
        hotline=hotline_text(company.country, company.hotline), **context), status)


def problem_page(status: int, title: str, message: str) -> Response:
    """A branded page with one heading, one sentence and the way back to the check page."""
    return _page("error.html", status, title=title, message=message)


def outage_page(status: int = 503) -> Response:
    """Our outage, said honestly: the check is not working; hang up and call the official
    number. Never the "we cannot confirm this call" page, which speaks of scams."""
    response = _page("unavailable.html", status)
    response.headers["Retry-After"] = "60"
    return response


def _for_api() -> bool:
    return request.blueprint == "api" or request.path.startswith("/api/")


def csrf_error(_e: CSRFError) -> Response:
    """A form that was open longer than its CSRF token lives: the code box again."""
    return index_page(_("This page was open too long. Type the call code again."), 400)


def bad_request(_e: Exception) -> Response:
    """A malformed request (e.g. a NUL in a field): the failure page during a check, else the code
    box."""
    if request.endpoint in _CHECK_STEPS:
        return check_failed("bad_request")  # a check under way that cannot go on: the safe page
    return index_page(_("Something went wrong. Type the call code again."), 400)


def too_large(_e: Exception) -> Response:
    """A body over MAX_CONTENT_LENGTH: far more than any form here sends."""
    return index_page(_("That was far more than a call code. Type the 9 digits only."), 413)


def rate_limited(_e: Exception) -> Response:
    """A 429 on a public page: the failure page. (The check page's failed-lookup limit is the
    library's, which refuses with the failure page itself; the staff pages have their own.)"""
    return check_failed("rate_limited")


def database_down(e: StoreError) -> Response:
    """The database cannot be reached: logged with the reason, and our honest outage page
    (503)."""
    log.error("the database is unavailable: %s", e)
    if request.blueprint in _STAFF:
        return problem_page(503, _("Something went wrong on our side"),
                            _("Try again in a few minutes."))
    return outage_page(503)


def not_found(e: NotFound) -> Response:
    """No page here: a branded page (the configured check page's address shows the check)."""
    if _for_api():
        return api.http_error(e)  # the API's own JSON error shape
    company = services().deployment.config.company
    path = "/" + check_address(company).partition("/")[2].strip("/")
    if path != "/" and request.path.rstrip("/") == path:
        return make_response(redirect("/", 302))
    return problem_page(404, _("Page not found"), _("There is no page at this address."))


def method_not_allowed(e: MethodNotAllowed) -> Response:
    """A page opened in a way it cannot be (a form's address typed into the address bar)."""
    if _for_api():
        return api.http_error(e)
    response = problem_page(405, _("This page cannot be opened directly"),
                            _("Start again from the call check page."))
    response.headers["Allow"] = ", ".join(e.valid_methods or ("GET", "HEAD"))
    return response


def server_error(_e: InternalServerError) -> Response:
    """Something failed on our side (the log has what): a branded page, never a trace."""
    if _for_api():
        return api.server_error(_e)
    if request.blueprint in _STAFF:
        return problem_page(500, _("Something went wrong on our side"),
                            _("Try again in a few minutes."))
    return outage_page(500)


def other_error(e: HTTPException) -> Response:
    """Any other HTTP error outside the API: a branded page named after its status."""
    if _for_api():
        return api.http_error(e)
    return problem_page(e.code or 500, _("Something went wrong"),
                        _("Start again from the call check page."))


def init_app(app: Flask) -> None:
    """Register the app-wide error pages on ``app``."""
    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(400, bad_request)
    app.register_error_handler(404, not_found)
    app.register_error_handler(405, method_not_allowed)
    app.register_error_handler(413, too_large)
    app.register_error_handler(429, rate_limited)
    app.register_error_handler(500, server_error)
    app.register_error_handler(HTTPException, other_error)
    app.register_error_handler(StoreError, database_down)
