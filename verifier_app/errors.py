"""The app-wide error pages: what a visitor sees when a request fails and its blueprint has no
handler of its own for the failure.

A check under way that cannot go on shows the one failure page (the cause goes to the log); any
other page goes back to the call code box with one sentence in the page's language. Flask asks a
blueprint's handlers first, so the issuer API keeps its JSON errors (``api.py``), and the console,
the fraud desk and the enrolment page keep their own pages for the failures they handle.

    errors.init_app(app)      # in create_app, like flaskr's db.init_app
"""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError

from callproof import StoreError

from .public import failure_page, index_page

log = logging.getLogger("callproof.web")

#: The check page's steps after the code: a request to one of them that cannot go on fails the
#: check (the safe page) instead of asking for the code again.
_CHECK_STEPS = ("public.number", "public.word", "public.step")


def csrf_error(_e: CSRFError) -> Response:
    """A form that was open longer than its CSRF token lives: the code box again."""
    return index_page(_("This page was open too long. Type the call code again."), 400)


def bad_request(_e: Exception) -> Response:
    """A malformed request (e.g. a NUL in a field): the failure page during a check, else the code
    box."""
    if request.endpoint in _CHECK_STEPS:
        return failure_page("bad_request")  # a check under way that cannot go on: the safe page
    return index_page(_("Something went wrong. Type the call code again."), 400)


def too_large(_e: Exception) -> Response:
    """A body over MAX_CONTENT_LENGTH: far more than any form here sends."""
    return index_page(_("That was far more than a call code. Type the 9 digits only."), 413)


def rate_limited(_e: Exception) -> Response:
    """Too many failed lookups from this client: the failure page."""
    return failure_page("rate_limited")


def database_down(_e: StoreError) -> Response:
    """The database cannot be reached: logged, and the failure page."""
    log.error("the database is unavailable")
    return failure_page("unavailable")


def init_app(app: Flask) -> None:
    """Register the app-wide error pages on ``app``."""
    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(400, bad_request)
    app.register_error_handler(413, too_large)
    app.register_error_handler(429, rate_limited)
    app.register_error_handler(StoreError, database_down)
