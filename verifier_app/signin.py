"""The steps the agent console's and the fraud desk's sign-ins share: the form, the limits,
the security log, sign-out. Each page keeps its own template, session key, log kind and words,
and passes its words in (so the catalogue finds them in the page's own module)::

    _SIGN_IN_PAGE = SignInPage(kind="agent", session_key="sign_in", id_field="agent_id",
                               home="console.home", sign_in="console.sign_in",
                               form=_sign_in_page)

    @bp.post("/sign-in")
    def sign_in_post() -> Response:
        return signin.sign_in(_SIGN_IN_PAGE, _check_password, too_many=_too_many,
                              missing=_("Type your agent id and your password."),
                              wrong=_("The agent id or the password is not right."))

The sign-in itself lives in the database (:mod:`callproof.sign_ins`): the cookie holds only its
random token, failures count against ``[limits] sign_in_*``, and signing out ends it there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from flask import Response, request, session

from callproof import seclog
from callproof.sign_ins import SignIn, TooManySignIns

from .extensions import services
from .i18n import redirect_keeping_language
from .security import client_log_field

#: The longest id and password checked; longer ones fail like a wrong password (and count).
MAX_ID, MAX_PASSWORD = 64, 1024


class _Account(Protocol):
    @property
    def enabled(self) -> bool: ...


AccountT = TypeVar("AccountT", bound=_Account)


class SignInForm(Protocol):
    """A page's sign-in form, with an error or a notice and the id typed shown back."""

    def __call__(self, error: str | None = None, status: int = 200, *, typed_id: str = "",
                 notice: str | None = None) -> Response: ...


@dataclass(frozen=True)
class SignInPage:
    """One page's sign-in."""

    #: The sign-in's kind in the database and in the security log ("agent", "desk").
    kind: str
    #: The session key of the sign-in's token.
    session_key: str
    #: The form field of the id.
    id_field: str
    #: Where a signed-in user goes, and the sign-in form's endpoint.
    home: str
    sign_in: str
    #: The page's own sign-in form.
    form: SignInForm


def signed_in(page: SignInPage, live: SignIn | None,
              account: Callable[[str], AccountT | None]) -> AccountT | None:
    """The account of ``live``, this request's sign-in (``account(user_id)`` finds it), while
    the account exists and is enabled. Anything else clears the session: a disabled account is
    signed out on its next request."""
    if live is None:
        if page.session_key in session:
            session.clear()
        return None
    found = account(live.user_id)
    if found is None or not found.enabled:
        session.clear()
        return None
    return found


def typed_id(page: SignInPage) -> str:
    """The id the form sent, as the form shows it back."""
    return request.form.get(page.id_field, "").strip()[:MAX_ID]


def show_form(page: SignInPage, signed_in: bool, *, signed_out: str) -> Response:
    """The sign-in form (with the ``signed_out`` notice after a sign-out), or the page's home
    when already signed in."""
    if signed_in:
        return redirect_keeping_language(page.home)
    return page.form(notice=signed_out if request.args.get("signed_out") else None)


def sign_in(page: SignInPage, check: Callable[[str, str], str | None], *,
            too_many: Callable[[TooManySignIns], Response], missing: str,
            wrong: str) -> Response:
    """Sign in with the form's id and password: ``check(id, password)`` gives the user id to
    sign in, or None. A refusal by the limits answers ``too_many(error)`` with Retry-After; a
    wrong id or password counts as a failure. A success starts a fresh session (and CSRF
    token): any other sign-in in this browser ends."""
    user_id = request.form.get(page.id_field, "").strip()
    password = request.form.get("password", "")
    if not user_id or not password:
        return page.form(missing, 400, typed_id=user_id[:MAX_ID])
    try:
        attempt = services().sign_ins.attempt(page.kind, user_id, request.remote_addr)
    except TooManySignIns as e:
        seclog.event("sign_in.refused", kind=page.kind, reason="too_many_sign_ins",
                     client=client_log_field())
        response = too_many(e)
        response.headers["Retry-After"] = str(e.retry_after)
        return response
    signed = check(user_id, password) \
        if len(user_id) <= MAX_ID and len(password) <= MAX_PASSWORD else None
    if signed is None:
        services().sign_ins.failed(page.kind, user_id)
        # Not the id: it may be a password typed there.
        seclog.event("sign_in.failed", kind=page.kind, client=client_log_field())
        return page.form(wrong, 400, typed_id=user_id[:MAX_ID])
    token = services().sign_ins.start(page.kind, signed, attempt=attempt)
    session.clear()
    session[page.session_key] = token
    seclog.event("sign_in.ok", kind=page.kind, user_id=signed, client=client_log_field())
    return redirect_keeping_language(page.home)


def sign_out(page: SignInPage) -> Response:
    """End the sign-in in the database (a copied cookie is dead) and the session with it."""
    token = session.get(page.session_key)
    live = services().sign_ins.check(page.kind, token)
    services().sign_ins.end(token)
    if live is not None:
        seclog.event("sign_out", kind=page.kind, user_id=live.user_id)
    session.clear()
    return redirect_keeping_language(page.sign_in, signed_out=1)
