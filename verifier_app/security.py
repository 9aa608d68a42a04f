"""Headers, the client's address for limits, and the claim cookie.

Every response carries a CSP without ``unsafe-inline`` and ``frame-ancestors 'none'``,
``Referrer-Policy: no-referrer``, ``X-Content-Type-Options: nosniff``, a Permissions-Policy that
turns off every powerful feature, and HSTS over HTTPS. Pages are never cached.
"""

from __future__ import annotations

import ipaddress

from flask import Flask, Request, Response, abort, request

from callproof import new_client_token
from callproof.checkflow import is_client_token

CLAIM_COOKIE = "cp_claim"
CLAIM_MAX_AGE = 1800  # the longest a ticket lives

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
PERMISSIONS = ("accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), "
               "magnetometer=(), microphone=(), payment=(), publickey-credentials-get=(), "
               "screen-wake-lock=(), usb=(), xr-spatial-tracking=()")


def client_key() -> str:
    """Who a limit counts against: the IPv4 address, or the IPv6 /64 (one subscriber's prefix).

    The address is the socket's unless CALLPROOF_TRUSTED_PROXIES says how many proxies to trust
    (ProxyFix then puts the client's address in ``remote_addr``).
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


def claim_token(req: Request) -> tuple[str, bool]:
    """This browser's claim-cookie value, and whether it is new (to be set on the response)."""
    value = req.cookies.get(CLAIM_COOKIE, "")
    if is_client_token(value) and value.replace("-", "").replace("_", "").isalnum():
        return value, False
    return new_client_token(), True


def set_claim_cookie(response: Response, token: str) -> None:
    """Set the claim cookie on ``response``: HttpOnly, SameSite=Strict, only for /verify."""
    response.set_cookie(CLAIM_COOKIE, token, max_age=CLAIM_MAX_AGE, path="/verify",
                        secure=request.is_secure, httponly=True, samesite="Strict")


def _headers(response: Response) -> Response:
    h = response.headers
    h.setdefault("Content-Security-Policy", CSP)
    h["X-Content-Type-Options"] = "nosniff"
    h["Referrer-Policy"] = "no-referrer"
    h["Permissions-Policy"] = PERMISSIONS
    h["X-Frame-Options"] = "DENY"
    h["Cross-Origin-Opener-Policy"] = "same-origin"
    h["Cross-Origin-Resource-Policy"] = "same-origin"
    if request.is_secure:
        h["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
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


def init_app(app: Flask) -> None:
    """Refuse NULs before every view and add the security headers to every response."""
    app.before_request(_refuse_nul)
    app.after_request(_headers)
