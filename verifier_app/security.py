"""Headers, forms that only this site can send, cookies, the client's address, and the proxy.

Every response carries a CSP without ``unsafe-inline`` and ``frame-ancestors 'none'``,
``Referrer-Policy: no-referrer``, ``X-Content-Type-Options: nosniff``, a Permissions-Policy that
turns off every powerful feature, and HSTS over HTTPS. Pages are never cached.

**Forms.** Every form POST carries a CSRF token (Flask-WTF), and must come from this site. Flask-
WTF's own HTTPS check wants a ``Referer`` that matches the host, which the pages' own
``Referrer-Policy: no-referrer`` withholds, so it refused every form over HTTPS. Instead
(:func:`_same_origin`): ``Sec-Fetch-Site`` must be ``same-origin`` or ``none`` (a person's own
action, e.g. a reload) when the browser sends it — every current browser does over HTTPS — and
otherwise an ``Origin`` must be this site's own. A browser that sends neither, or the ``Origin:
null`` that the Fetch standard sends for a form under ``no-referrer``, still needs the token,
which lives in a ``SameSite=Strict`` session cookie that another site's form never carries.
A refused form gets what a stale token gets: the blueprint's own "this page was open too long".

**Cookies.** Served over HTTPS (``CALLPROOF_HTTPS=1``) every cookie is ``Secure`` and prefixed, so
that no other host — a sibling subdomain, a network attacker's plain-HTTP response — can set or
overwrite it: the session (which holds the CSRF token and the console sign-in) is
``__Host-cp_session`` and the claim cookie ``__Host-cp_claim``. ``__Host-`` requires ``Path=/``;
the claim cookie therefore widens from ``Path=/verify`` to ``/`` over HTTPS. That costs nothing:
a path is no boundary inside one origin (any page of it can load /verify), the cookie is
HttpOnly and SameSite=Strict, and only the check pages read it — while ``__Secure-`` with the
narrow path would still let a sibling subdomain plant a claim cookie of its choosing
(``Domain=``). Over plain HTTP (local use) the names stay ``cp_session`` and ``cp_claim``
(``Path=/verify``), since browsers refuse prefixed cookies there.

**The client's address** (for limits) is the socket's, unless a trusted proxy says otherwise:
``CALLPROOF_TRUSTED_PROXIES`` is how many proxies in front append to ``X-Forwarded-For``, and
``CALLPROOF_TRUSTED_PROXY_ADDRESSES`` (addresses or networks, comma-separated) the peers whose
forwarding headers count; from any other peer they are dropped (:class:`ProxyTrust`). Forwarding
headers that the settings ignore are logged once per process, since then every customer behind the
proxy shares its address. The app's port must be reachable from the proxy only.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Flask, Request, Response, abort, current_app, g, request
from flask_wtf.csrf import CSRFError
from werkzeug.middleware.proxy_fix import ProxyFix

from callproof import ConfigError, new_client_token
from callproof.checkflow import is_client_token
from callproof.seclog import client_field

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("callproof.web")

CLAIM_COOKIE = "cp_claim"  # over plain HTTP; over HTTPS __Host-cp_claim (claim_cookie_name)
SESSION_COOKIE = "cp_session"
CLAIM_MAX_AGE = 1800  # the longest a ticket lives

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
PERMISSIONS = ("accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), "
               "magnetometer=(), microphone=(), payment=(), publickey-credentials-get=(), "
               "screen-wake-lock=(), usb=(), xr-spatial-tracking=()")
HSTS = "max-age=31536000; includeSubDomains"

#: Sec-Fetch-Site values of a request this site's own pages (or the person) made.
_OWN_FETCH = frozenset({"same-origin", "none"})
_DEFAULT_PORT = {"http": "80", "https": "443"}


def client_key() -> str:
    """Who a limit counts against: the IPv4 address, or the IPv6 /64 (one subscriber's prefix).

    The address is the socket's unless a trusted proxy put the client's in ``remote_addr``
    (:class:`ProxyTrust`).
    """
    raw = request.remote_addr or "unknown"
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _hash_keys() -> Any:
    """The deployment's keyed hashes (``extensions.services()``, which imports this module)."""
    return current_app.extensions["callproof"].deployment.hash_keys


def limit_key() -> str:
    """What Flask-Limiter counts a client's requests under: a keyed hash of :func:`client_key`,
    so that its storage (Redis) holds no client address (spec §8.2)."""
    return "c:" + str(_hash_keys().client_hash("limiter:" + client_key()))


def client_log_field() -> str | None:
    """This request's client as the security log names it: a keyed hash, never the address."""
    return client_field(_hash_keys(), client_key())


# --- cookies -----------------------------------------------------------------------------


def claim_cookie_name() -> str:
    """The claim cookie's name: ``__Host-cp_claim`` over HTTPS, ``cp_claim`` over HTTP."""
    return "__Host-" + CLAIM_COOKIE if current_app.config["HTTPS"] else CLAIM_COOKIE


def claim_token(req: Request) -> tuple[str, bool]:
    """This browser's claim-cookie value, and whether it is new (to be set on the response)."""
    value = req.cookies.get(claim_cookie_name(), "")
    if is_client_token(value) and value.replace("-", "").replace("_", "").isalnum():
        return value, False
    return new_client_token(), True


def set_claim_cookie(response: Response, token: str) -> None:
    """Set the claim cookie on ``response``: HttpOnly, SameSite=Strict; over HTTPS Secure with
    the ``__Host-`` prefix (so ``Path=/``), over HTTP only for /verify."""
    https = bool(current_app.config["HTTPS"])
    response.set_cookie(claim_cookie_name(), token, max_age=CLAIM_MAX_AGE,
                        path="/" if https else "/verify", secure=https or request.is_secure,
                        httponly=True, samesite="Strict")


# --- forms from this site only -----------------------------------------------------------


def _origin(scheme: str, host: str) -> str:
    """``scheme://host[:port]`` as a browser serialises an origin: lower case, no default port."""
    scheme, host = scheme.lower(), host.lower()
    name, colon, port = host.rpartition(":")
    if colon and "]" not in port and port == _DEFAULT_PORT.get(scheme):
        host = name
    return f"{scheme}://{host}"


def own_origin() -> str:
    """This site's origin as a browser writes it in ``Origin`` (scheme https when served over
    HTTPS, even if the proxy's hop to the app is plain HTTP)."""
    scheme = "https" if current_app.config["HTTPS"] or request.is_secure else request.scheme
    return _origin(scheme, request.host)


def _same_origin() -> None:
    """Refuse a form that another site made the browser send (see the module's docstring).

    Runs after Flask-WTF's token check, on the requests it checked (``g.csrf_valid``): so never
    on the API, which takes no cookies, and never when CSRF protection is off."""
    if not g.get("csrf_valid"):
        return
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        if site.strip().lower() not in _OWN_FETCH:
            raise CSRFError("The form was sent from another site.")
        return
    origin = request.headers.get("Origin")
    if origin is None or origin.strip() == "null":
        return  # nothing to go on: the token and the SameSite=Strict cookie decide
    parts = urlsplit(origin.strip())
    if _origin(parts.scheme, parts.netloc) != own_origin():
        raise CSRFError("The form was sent from another origin.")


# --- headers -----------------------------------------------------------------------------


def _headers(response: Response) -> Response:
    h = response.headers
    h.setdefault("Content-Security-Policy", CSP)
    h["X-Content-Type-Options"] = "nosniff"
    h["Referrer-Policy"] = "no-referrer"
    h["Permissions-Policy"] = PERMISSIONS
    h["X-Frame-Options"] = "DENY"
    h["Cross-Origin-Opener-Policy"] = "same-origin"
    h["Cross-Origin-Resource-Policy"] = "same-origin"
    if request.is_secure or current_app.config["HTTPS"]:
        h["Strict-Transport-Security"] = HSTS
    if "Cache-Control" not in h:
        h["Cache-Control"] = "no-store"
    return response


def _refuse_nul() -> None:
    """A NUL (U+0000) in the address or a form field is refused before any view runs: no field
    here can hold one, SQLite would store it and PostgreSQL would refuse it (a lost report and
    a false "database unavailable" alarm). The blueprints' 400 handlers answer in the user's
    language. (The API checks every id and member itself and answers as documented.)"""
    if request.blueprint == "api":
        return
    if "\x00" in request.path or any("\x00" in name or "\x00" in value
                                      for name, value in request.values.items(multi=True)):
        abort(400)


# --- the proxy in front ------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The WSGI keys of the forwarding headers: what a proxy says about the client and the scheme.
FORWARDING = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST",
              "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PREFIX", "HTTP_FORWARDED")


def parse_networks(value: str | Iterable[str] | None) -> tuple[Network, ...]:
    """``CALLPROOF_TRUSTED_PROXY_ADDRESSES``: addresses and networks, comma-separated.

    Raises :class:`ConfigError` naming the first entry that is neither."""
    items = value.split(",") if isinstance(value, str) else list(value or ())
    found: list[Network] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        try:
            found.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"CALLPROOF_TRUSTED_PROXY_ADDRESSES: {item!r} is not an address "
                              "or a network") from None
    return tuple(found)


def _peer_in(peer: str | None, networks: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(peer or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in n for n in networks)


class ProxyTrust:
    """WSGI middleware: who the client is, and which peers may say so.

    With ``hops`` 0 the socket's address is the client's and forwarding headers are ignored.
    Otherwise werkzeug's ProxyFix reads the last ``hops`` entries of ``X-Forwarded-For`` (and
    ``-Proto``, ``-Host``) — but when ``trusted`` networks are given, only for requests whose
    peer is in them; from any other peer the forwarding headers are removed before the app sees
    them. Ignored forwarding headers are logged once per process (no address is logged).
    """

    def __init__(self, app: WSGIApplication, hops: int,
                 trusted: tuple[Network, ...] = ()) -> None:
        self.app = app
        self.hops = hops
        self.trusted = trusted
        self.fixed: Callable[..., Any] | None = (
            ProxyFix(app, x_for=hops, x_proto=hops, x_host=hops) if hops else None)
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment,
                 start_response: StartResponse) -> Iterable[bytes]:
        forwarded = any(environ.get(key) for key in FORWARDING)
        if self.fixed is None:
            if forwarded:
                self._warn_once("ignored", "requests carry X-Forwarded-For but "
                                "CALLPROOF_TRUSTED_PROXIES is 0: every client behind the proxy "
                                "shares its address for the limits. Set "
                                "CALLPROOF_TRUSTED_PROXIES=1 and "
                                "CALLPROOF_TRUSTED_PROXY_ADDRESSES to the proxy's address")
            return self.app(environ, start_response)
        if self.trusted and not _peer_in(environ.get("REMOTE_ADDR"), self.trusted):
            if forwarded:
                self._warn_once("untrusted", "a request from a peer outside "
                                "CALLPROOF_TRUSTED_PROXY_ADDRESSES carried forwarding headers; "
                                "they were ignored. Only the proxy should reach the app's port")
                environ = {k: v for k, v in environ.items() if k not in FORWARDING}
            return self.app(environ, start_response)
        result: Iterable[bytes] = self.fixed(environ, start_response)
        return result

    def _warn_once(self, kind: str, message: str) -> None:
        with self._lock:
            if kind in self._warned:
                return
            self._warned.add(kind)
        log.warning(message)


# --- wiring ------------------------------------------------------------------------------


def init_app(app: Flask) -> None:
    """Cookie names and flags for the scheme, the proxy middleware, the same-origin check on
    forms (after Flask-WTF's, so call this after ``csrf.init_app``), NUL refusal before every
    view, and the security headers on every response."""
    https = bool(app.config["HTTPS"])
    app.config["SESSION_COOKIE_NAME"] = "__Host-" + SESSION_COOKIE if https else SESSION_COOKIE
    app.config["SESSION_COOKIE_SECURE"] = https
    app.config["SESSION_COOKIE_PATH"] = "/"  # __Host- needs Path=/ and no Domain
    app.config["SESSION_COOKIE_DOMAIN"] = None
    app.config["WTF_CSRF_SSL_STRICT"] = False  # replaced by _same_origin (no Referer needed)
    trusted = parse_networks(app.config["TRUSTED_PROXY_ADDRESSES"])
    hops = int(app.config["TRUSTED_PROXIES"])
    if trusted and not hops:
        hops = 1  # naming the proxy's address says there is one
    app.wsgi_app = ProxyTrust(app.wsgi_app, hops, trusted)  # type: ignore[method-assign]
    app.before_request(_same_origin)
    app.before_request(_refuse_nul)
    app.after_request(_headers)
