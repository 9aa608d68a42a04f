"""Languages: English, Traditional Chinese (Taiwan) and Simplified Chinese (mainland).

The page's language comes from a ``lang`` parameter (the visible switch: plain links, no
JavaScript, no cookie) or else the browser's Accept-Language. ``<html lang>`` uses the BCP 47 tag.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, make_response, redirect, request, url_for
from flask_babel import get_locale, lazy_gettext
from werkzeug.exceptions import HTTPException

#: BCP 47 tag → the catalogue's locale name.
LANGUAGES = {"en": "en", "zh-Hant": "zh_Hant", "zh-Hans": "zh_Hans"}
#: Each language named in itself, for the switch.
NATIVE_NAMES = {"en": "English", "zh-Hant": "繁體中文", "zh-Hans": "简体中文"}
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
    return LANGUAGES[page_language()]


def current_language() -> str:
    locale = str(get_locale() or "en")
    return next((tag for tag, name in LANGUAGES.items() if name == locale), "en")


# The national anti-fraud hotline by the company's country (DESIGN §7; configurable by number).
HOTLINE_NAMES = {
    "TW": lazy_gettext("the %(number)s anti-fraud hotline"),
    "CN": lazy_gettext("the %(number)s anti-fraud warning hotline"),
    "HK": lazy_gettext("the Anti-Scam Helpline %(number)s"),
}


def hotline_text(country: str, number: str) -> str:
    default = lazy_gettext("the national anti-fraud hotline %(number)s")
    template = HOTLINE_NAMES.get(country, default)
    return str(template) % {"number": number}


def language_links(endpoint: str, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The switch: one link per language to the same page (a GET page)."""
    here = current_language()
    return [{"tag": tag, "name": NATIVE_NAMES[tag], "current": tag == here,
             "url": url_for(endpoint, **values, lang=tag)} for tag in LANGUAGES]


def init_app(app: Flask) -> None:
    @app.context_processor
    def _languages() -> dict[str, Any]:
        return {"lang": current_language(), "language_links": language_links}
