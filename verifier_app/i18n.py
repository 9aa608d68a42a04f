"""Languages: English, Traditional Chinese (Taiwan) and Simplified Chinese (mainland).

The page's language comes from a ``lang`` parameter (the visible switch: plain links, no
JavaScript, no cookie) or else the browser's Accept-Language. ``<html lang>`` uses the BCP 47 tag.
The languages are the library's (:data:`callproof.protocol.languages.LANGUAGES`), and so are the
hotline's words (:func:`callproof.notice.hotline_text`, the same as on the notice card).

Names come in the page's language where the company profile has one (``name_zh_hant`` …),
falling back to the name as given; numbers customers may call are ``tel:`` links (``tel``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from flask import Flask, Response, make_response, redirect, request, url_for
from flask_babel import get_locale
from markupsafe import Markup, escape
from werkzeug.exceptions import HTTPException

from callproof.config import Company
from callproof.notice import check_address
from callproof.notice import hotline_text as notice_hotline_text
from callproof.protocol import languages

#: BCP 47 tag → the catalogue's locale name ("zh-Hant" → "zh_Hant"), for every language.
LANGUAGES = {tag: tag.replace("-", "_") for tag in languages.LANGUAGES}
#: Each language named in itself, for the switch.
NATIVE_NAMES = languages.NATIVE_NAMES
_TRADITIONAL_REGIONS = ("tw", "hk", "mo", "hant")


def redirect_keeping_language(endpoint: str, **values: Any) -> Response:
    """A 303 to ``endpoint`` that keeps a language the visitor chose explicitly (``lang``)."""
    asked = request.values.get("lang", "")
    target: dict[str, Any] = {**values, **({"lang": asked} if asked in LANGUAGES else {})}
    return make_response(redirect(url_for(endpoint, **target), 303))


def _from_accept_language() -> str:
    for value, _quality in request.accept_languages:
        tag = value.lower().replace("_", "-")
        if tag.startswith("zh"):
            return "zh-Hant" if any(r in tag.split("-")[1:] for r in _TRADITIONAL_REGIONS) \
                else "zh-Hans"
        if tag.startswith("en"):
            return "en"
    return "en"


def page_language() -> str:
    """The BCP 47 tag of this request's language."""
    asked = request.args.get("lang", "")
    if not asked and request.method == "POST":
        try:
            asked = request.form.get("lang", "")
        except HTTPException:  # an oversized or broken body: the error page still needs a language
            asked = ""
    return asked if asked in LANGUAGES else _from_accept_language()


def select_locale() -> str:
    """The catalogue locale of this request's language (Flask-Babel's locale selector)."""
    return LANGUAGES[page_language()]


def current_language() -> str:
    """The BCP 47 tag of the language the page is rendered in (``en`` outside a known one)."""
    locale = str(get_locale() or "en")
    return next((tag for tag, name in LANGUAGES.items() if name == locale), "en")


def hotline_text(country: str, number: str) -> str:
    """The national anti-fraud hotline for the company's ``country`` (DESIGN §7) with its
    ``number``, in the page's language: the notice card's own words (one home for them)."""
    return notice_hotline_text(current_language(), country, number)


def company_here(company: Company) -> Company:
    """``company`` with its name in the page's language (the given name where it has none)."""
    name = company.name_in(current_language())
    return company if name == company.name else dataclasses.replace(company, name=name)


def in_language(names: Any, given: str) -> str:
    """A name in the page's language from ``names`` (language tag → text), else ``given``."""
    found = names.get(current_language()) if isinstance(names, Mapping) else None
    return found.strip() if isinstance(found, str) and found.strip() else given


def check_host(company: Company) -> str:
    """The host of the genuine check page, as the address bar shows it (``shop.example``)."""
    return check_address(company).split("/", 1)[0]


def tel(number: str, text: str | None = None) -> Markup:
    """A ``tel:`` link that calls ``number`` (spaces and dashes dropped), showing ``text`` (the
    number as written by default): a customer taps it instead of typing it."""
    dial = re.sub(r"[^0-9+*#]", "", number)
    shown = escape(number if text is None else text)
    if not dial:
        return shown
    kind = "tel number" if text is None else "tel"  # a number alone never breaks over lines
    return Markup('<a class="{}" href="tel:{}">{}</a>').format(kind, dial, shown)


def language_links(endpoint: str | None, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The switch: one link per language to the same page (a GET page); ``endpoint`` None is
    this very address (an error page's), with its query but the language."""
    here = current_language()

    def url(tag: str) -> str:
        if endpoint is not None:
            return url_for(endpoint, **values, lang=tag)
        # Same-site always: "//evil.example" as a path must not become a link to another site.
        path = "/" + request.path.lstrip("/\\")
        query = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
        return quote(path) + "?" + urlencode([*query, ("lang", tag)])

    return [{"tag": tag, "name": NATIVE_NAMES[tag], "current": tag == here, "url": url(tag)}
            for tag in LANGUAGES]


def init_app(app: Flask) -> None:
    """Give every template ``lang`` (the page's BCP 47 tag), ``language_links``, ``tel`` and
    ``check_host``."""

    @app.context_processor
    def _languages() -> dict[str, Any]:
        return {"lang": current_language(), "language_links": language_links, "tel": tel,
                "check_host": check_host}
