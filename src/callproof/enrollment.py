"""Enrolled proofs: enrolment tokens, app codes (TOTP), phrases, reveals, the app call status.

Everything a customer enrols is keyed by their random handle (never the customer ref) and sealed
at rest (:mod:`callproof.sealing`). An agent sees the customer's current app code or phrase only
on an explicit reveal during a call the dialer reported connected, within hourly caps per agent
and per customer; each reveal is an event that never holds the code or the phrase. See
spec/enrolled-proofs.md.

    >>> proofs = EnrolledProofs(Deployment.open("callproof-data"))
    >>> token = proofs.create_enrollment("C-42")          # the company's backend, logged-in site
    >>> handle = proofs.open_enrollment(token.token)       # the enrolment page, once
    >>> enrolment = proofs.enroll_totp(handle=handle)      # show enrolment.otpauth_uri as a QR
    >>> proofs.confirm_totp("492039", handle=handle)       # one current code from the app
    >>> proofs.set_phrase("blue heron at dawn", handle=handle)
    >>> proofs.reveal(ticket_id, agent_id="a-001").to_json()   # during the connected call
    {'app_code': '771203', 'app_code_valid_for': 17, 'phrase': 'blue heron at dawn'}
    >>> proofs.call_status("C-42")                          # the company's app
    {'calling': False, 'last_call': {'at': '2026-12-03T09:12:00Z', 'agent_name': 'Mei Lin', …}}

Every method takes ``now`` (the deployment's clock when omitted).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, and_, delete, distinct, func, insert, select, update

from callproof.admin import agent_from_row, customer_ref_hash, handle_for
from callproof.config import DataDir
from callproof.deployment import Deployment
from callproof.errors import EnrollmentError, InputError, NotFound, RevealRefused
from callproof.proofs import KINDS, PHRASE, TOTP
from callproof.proofs import totp as otp
from callproof.proofs.phrase import normalise_phrase
from callproof.protocol import events, states
from callproof.protocol.clock import Clock, from_epoch, iso, to_epoch
from callproof.protocol.languages import LANGUAGES
from callproof.protocol.privacy import equal
from callproof.sealing import Sealer
from callproof.store import schema

#: The named lock enrolment and reveal writes take (their caps and one-time tokens are counted
#: across processes); the check and issue paths never take it.
ENROLMENT_LOCK = "enrolment"

#: How long an enrolment token opens the enrolment page (once).
TOKEN_TTL_SECONDS = 15 * 60
#: Wrong codes a pending app enrolment survives; then it is discarded and must start again.
MAX_CONFIRM_FAILURES = 5
#: The window of the hourly reveal caps.
CAP_WINDOW_SECONDS = 3600
#: Below this many seconds left, a reveal gives the next app code too (one reveal, one event).
NEXT_CODE_BELOW = 5
#: How far back the app call status names the last call (``last_call``).
LAST_CALL_DAYS = 30
_TOKEN_PREFIX = "enr_"  # noqa: S105 - a prefix, not a secret


@dataclass(frozen=True)
class EnrollmentToken:
    """A single-use token for the enrolment page; only its hash is stored."""

    token: str = field(repr=False)
    expires_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"token": self.token, "expires_at": iso(self.expires_at)}


@dataclass(frozen=True)
class TotpEnrollment:
    """A pending app enrolment: the URI to show as a QR code (it holds the secret)."""

    otpauth_uri: str = field(repr=False)
    secret: str = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"otpauth_uri": self.otpauth_uri, "secret": self.secret, "status": "pending",
                "algorithm": otp.ALGORITHM, "digits": otp.DIGITS, "period": otp.PERIOD}

    def qr_png(self) -> bytes:
        return otp.qr_png(self.otpauth_uri)

    def qr_svg(self) -> bytes:
        return otp.qr_svg(self.otpauth_uri)

    def qr_terminal(self) -> str:
        return otp.qr_terminal(self.otpauth_uri)

    def write_qr(self, path: str | os.PathLike[str]) -> Path:
        """Write the QR code as PNG or SVG, by the file's suffix."""
        return otp.write_qr(self.otpauth_uri, path)


@dataclass(frozen=True)
class Revealed:
    """What the agent's screen shows for one reveal. The repr hides the codes and the phrase.

    When the app code has less than :data:`NEXT_CODE_BELOW` seconds left, the next one comes
    too (``next_app_code``, valid until ``next_app_code_until``): the agent reads that one, and
    the customer's app shows it by the time they compare.
    """

    ticket_id: str
    app_code: str | None = field(default=None, repr=False)
    app_code_valid_for: int | None = None
    phrase: str | None = field(default=None, repr=False)
    app_code_until: datetime | None = None
    next_app_code: str | None = field(default=None, repr=False)
    next_app_code_until: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.app_code is not None:
            out.update(app_code=self.app_code, app_code_valid_for=self.app_code_valid_for)
            if self.app_code_until is not None:
                out["app_code_until"] = iso(self.app_code_until)
        if self.next_app_code is not None and self.next_app_code_until is not None:
            out.update(next_app_code=self.next_app_code,
                       next_app_code_until=iso(self.next_app_code_until))
        if self.phrase is not None:
            out["phrase"] = self.phrase
        return out


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()  # a fast hash suits a random token


class EnrolledProofs:
    """Enrolment, reveal and call status for one issuer; each change is one transaction with
    its event. Customers are named by ``customer_ref`` (the company's backend and the CLI) or by
    ``handle`` (the enrolment page, after :meth:`open_enrollment`) — exactly one of them."""

    def __init__(self, deployment: Deployment, *, sealer: Sealer | None = None) -> None:
        self.dep = deployment
        self._sealer_obj = sealer

    @classmethod
    def open(cls, data_dir: str | os.PathLike[str] | DataDir | None = None, *,
             clock: Clock | None = None) -> EnrolledProofs:
        return cls(Deployment.open(data_dir, clock=clock))

    def __repr__(self) -> str:
        return f"EnrolledProofs({self.dep.issuer_id!r})"

    @property
    def _sealer(self) -> Sealer:
        """The seal key, loaded on first use (the call status never needs it)."""
        if self._sealer_obj is None:
            self._sealer_obj = Sealer.from_data_dir(self.dep.data_dir)
        return self._sealer_obj

    def _seal(self, value: str, handle: str, kind: str) -> bytes:
        return self._sealer.seal(value.encode("utf-8"), issuer=self.dep.issuer_id,
                                 handle=handle, purpose=kind)

    def _unseal(self, blob: bytes, handle: str, kind: str) -> str:
        return self._sealer.open(blob, issuer=self.dep.issuer_id, handle=handle,
                                 purpose=kind).decode("utf-8")

    # --- naming the customer ------------------------------------------------------------------

    def _handle(self, conn: Connection, customer_ref: str | None, handle: str | None,
                now: datetime, *, create: bool) -> str | None:
        """The customer's handle; made on first use when ``create``; None when unknown."""
        if (customer_ref is None) == (handle is None):
            raise EnrollmentError("name the customer by customer_ref or by handle (one of them)",
                                  reason="bad_customer")
        c = schema.customers
        if customer_ref is not None:
            if create:
                return handle_for(self.dep, conn, customer_ref, now)
            row = conn.execute(select(c.c.handle).where(
                c.c.issuer_id == self.dep.issuer_id,
                c.c.ref_hash == customer_ref_hash(self.dep, customer_ref))).first()
            return str(row.handle) if row is not None else None
        row = conn.execute(select(c.c.handle).where(c.c.issuer_id == self.dep.issuer_id,
                                                    c.c.handle == handle)).first()
        if row is None:
            raise EnrollmentError("this customer was forgotten: nothing can be enrolled for "
                                  "them any more", reason="forgotten")
        return str(row.handle)

    def _required_handle(self, conn: Connection, customer_ref: str | None, handle: str | None,
                         now: datetime) -> str:
        found = self._handle(conn, customer_ref, handle, now, create=False)
        if found is None:
            raise EnrollmentError("nothing is enrolled for this customer", reason="not_enrolled")
        return found

    def _proof(self, conn: Connection, handle: str, kind: str) -> Any:
        p = schema.enrolled_proofs
        return conn.execute(select(p).where(p.c.issuer_id == self.dep.issuer_id,
                                            p.c.handle == handle, p.c.kind == kind)).first()

    def _replace(self, conn: Connection, handle: str, kind: str, sealed: bytes, *,
                 confirmed: bool, at: int) -> bool:
        """Store a proof, replacing any of its kind; True when one was replaced."""
        p = schema.enrolled_proofs
        replaced = conn.execute(delete(p).where(p.c.issuer_id == self.dep.issuer_id,
                                                p.c.handle == handle, p.c.kind == kind)).rowcount
        conn.execute(insert(p).values(issuer_id=self.dep.issuer_id, handle=handle, kind=kind,
                                      sealed=sealed, confirmed=confirmed, last_step=None,
                                      failures=0, created_at=at, updated_at=at))
        return bool(replaced)

    # --- enrolment tokens ---------------------------------------------------------------------

    def create_enrollment(self, customer_ref: str, *, now: datetime | None = None,
                          api_key: str | None = None) -> EnrollmentToken:
        """A single-use token, valid 15 minutes, for the company's logged-in site to open the
        enrolment page with. Never send it by SMS or e-mail."""
        now = self.dep.now(now)
        at = to_epoch(now)
        token = _TOKEN_PREFIX + secrets.token_urlsafe(32)
        t = schema.enrollment_tokens
        with self.dep.store.write(lock=ENROLMENT_LOCK) as conn:
            handle = handle_for(self.dep, conn, customer_ref, now)
            conn.execute(delete(t).where(t.c.issuer_id == self.dep.issuer_id,
                                         t.c.expires_at < at - 86400))  # old ones, used or not
            conn.execute(insert(t).values(token_hash=_token_hash(token),
                                          issuer_id=self.dep.issuer_id, handle=handle,
                                          created_at=at, expires_at=at + TOKEN_TTL_SECONDS,
                                          used_at=None))
            self.dep.record(conn, events.ENROLL_TOKEN_CREATED, now, handle=handle,
                            expires_at=at + TOKEN_TTL_SECONDS, **events.by_api_key(api_key))
        return EnrollmentToken(token, from_epoch(at + TOKEN_TTL_SECONDS))

    def open_enrollment(self, token: str, *, now: datetime | None = None) -> str:
        """Use ``token`` (once): the customer's handle for the enrolment page's session.

        Raises :class:`EnrollmentError` (``token_unknown``, ``token_used``, ``token_expired``).
        """
        now = self.dep.now(now)
        at = to_epoch(now)
        t = schema.enrollment_tokens
        again = "open the enrolment again from your account"
        if not isinstance(token, str) or not token.startswith(_TOKEN_PREFIX) or len(token) > 128:
            raise EnrollmentError(f"this enrolment link is not valid: {again}",
                                  reason="token_unknown")
        with self.dep.store.write(lock=ENROLMENT_LOCK) as conn:
            row = conn.execute(select(t).where(t.c.token_hash == _token_hash(token),
                                               t.c.issuer_id == self.dep.issuer_id)).first()
            if row is None:
                raise EnrollmentError(f"this enrolment link is not valid: {again}",
                                      reason="token_unknown")
            if row.used_at is not None:
                raise EnrollmentError(f"this enrolment link was already used: {again}",
                                      reason="token_used")
            if at >= row.expires_at:
                raise EnrollmentError(f"this enrolment link has expired (links last "
                                      f"{TOKEN_TTL_SECONDS // 60} minutes): {again}",
                                      reason="token_expired")
            conn.execute(update(t).where(t.c.token_hash == row.token_hash).values(used_at=at))
            self.dep.record(conn, events.ENROLL_TOKEN_USED, now, handle=row.handle)
        return str(row.handle)

    # --- app codes (TOTP) ---------------------------------------------------------------------

    def enroll_totp(self, *, customer_ref: str | None = None, handle: str | None = None,
                    now: datetime | None = None) -> TotpEnrollment:
        """Start (or restart) an app enrolment: a fresh secret, pending until confirmed.
        Replaces any earlier app enrolment of the customer."""
        now = self.dep.now(now)
        secret = otp.new_secret()
        with self.dep.store.write(lock=ENROLMENT_LOCK) as conn:
            h = self._handle(conn, customer_ref, handle, now, create=True)
            assert h is not None  # noqa: S101 - create=True always gives one
            replaced = self._replace(conn, h, TOTP, self._seal(secret, h, TOTP), confirmed=False,
                                     at=to_epoch(now))
            self.dep.record(conn, events.TOTP_STARTED, now, handle=h, replaced=replaced)
        return TotpEnrollment(otp.otpauth_uri(secret, self.dep.config.company.name), secret)

    def confirm_totp(self, code: str, *, customer_ref: str | None = None,
                     handle: str | None = None, now: datetime | None = None) -> None:
        """Complete the app enrolment with one current code (±1 step). A code once accepted
        is never accepted again. Raises :class:`EnrollmentError` (``not_enrolled``,
        ``wrong_code``, ``code_replayed``, ``too_many_failures``)."""
        now = self.dep.now(now)
        p = schema.enrolled_proofs
        error: EnrollmentError | None = None
        with self.dep.store.write(lock=ENROLMENT_LOCK) as conn:
            h = self._required_handle(conn, customer_ref, handle, now)
            row = self._proof(conn, h, TOTP)
            if row is None:
                raise EnrollmentError("no app enrolment to confirm: start one first",
                                      reason="not_enrolled")
            steps = otp.matching_steps(self._unseal(row.sealed, h, TOTP), code, now)
            fresh = [s for s in steps if row.last_step is None or s > row.last_step]
            where = and_(p.c.issuer_id == self.dep.issuer_id, p.c.handle == h, p.c.kind == TOTP)
            if fresh:
                conn.execute(update(p).where(where).values(
                    confirmed=True, last_step=max(fresh), failures=0,
                    updated_at=to_epoch(now)))
                self.dep.record(conn, events.TOTP_CONFIRMED, now, handle=h)
                return
            if steps:
                error = EnrollmentError("this code was already used: wait for the next code in "
                                        f"the app (a new one every {otp.PERIOD} s)",
                                        reason="code_replayed")
            elif not row.confirmed and row.failures + 1 >= MAX_CONFIRM_FAILURES:
                conn.execute(delete(p).where(where))
                error = EnrollmentError("too many wrong codes: the app enrolment was discarded; "
                                        "start again with a new QR code",
                                        reason="too_many_failures")
            else:
                conn.execute(update(p).where(where).values(failures=row.failures + 1))
                error = EnrollmentError("the code does not match: type the code the app shows "
                                        "now for this enrolment", reason="wrong_code")
            self.dep.record(conn, events.TOTP_CONFIRM_FAILED, now, handle=h,
                            cause=error.reason)
        raise error

    # --- phrases ------------------------------------------------------------------------------

    def set_phrase(self, phrase: str, *, customer_ref: str | None = None,
                   handle: str | None = None, now: datetime | None = None) -> None:
        """Set or change the customer's phrase (NFKC, 4–64 characters, not digits, not a card
        number). Raises :class:`~callproof.proofs.phrase.PhraseRefused` naming the rule."""
        now = self.dep.now(now)
        text = normalise_phrase(phrase)
        with self.dep.store.write(lock=ENROLMENT_LOCK) as conn:
            h = self._handle(conn, customer_ref, handle, now, create=True)
            assert h is not None  # noqa: S101 - create=True always gives one
            replaced = self._replace(conn, h, PHRASE, self._seal(text, h, PHRASE),
                                     confirmed=True, at=to_epoch(now))
            self.dep.record(conn, events.PHRASE_SET, now, handle=h, replaced=replaced)

    # --- both ---------------------------------------------------------------------------------

    def remove(self, *, customer_ref: str | None = None, handle: str | None = None,
               kinds: Iterable[str] = KINDS, now: datetime | None = None) -> list[str]:
        """Delete the customer's app enrolment and/or phrase; returns the kinds deleted."""
        now = self.dep.now(now)
        chosen = [k for k in KINDS if k in set(kinds)]
        p = schema.enrolled_proofs
        with self.dep.store.write(lock=ENROLMENT_LOCK) as conn:
            h = self._handle(conn, customer_ref, handle, now, create=False)
            if h is None or not chosen:
                return []
            gone = [k for k in chosen if conn.execute(delete(p).where(
                p.c.issuer_id == self.dep.issuer_id, p.c.handle == h, p.c.kind == k)).rowcount]
            if gone:
                self.dep.record(conn, events.PROOF_REMOVED, now, handle=h, kinds=gone)
        return gone

    def enrolled(self, *, customer_ref: str | None = None,
                 handle: str | None = None) -> dict[str, Any]:
        """What the customer has: ``{"totp": None|"pending"|"confirmed", "phrase": bool}``."""
        p = schema.enrolled_proofs
        with self.dep.store.read() as conn:
            h = self._handle(conn, customer_ref, handle, self.dep.now(), create=False)
            rows = [] if h is None else conn.execute(select(p.c.kind, p.c.confirmed).where(
                p.c.issuer_id == self.dep.issuer_id, p.c.handle == h)).all()
        found = {r.kind: bool(r.confirmed) for r in rows}
        totp = None if TOTP not in found else "confirmed" if found[TOTP] else "pending"
        return {"totp": totp, "phrase": PHRASE in found}

    # --- reveal -------------------------------------------------------------------------------

    def reveal(self, ticket_id: str, *, agent_id: str | None = None, api_key: str | None = None,
               now: datetime | None = None, allow_unconnected: bool = False) -> Revealed:
        """The customer's current app code and/or phrase for the agent of ``ticket_id``.

        Only for a live ticket of an enrolled customer whose call the dialer reported connected
        (``allow_unconnected`` lifts that, for tests, and raises an alert), within the hourly
        caps per agent and per customer. ``agent_id``, when given (the console), must be the
        ticket's agent; ``api_key`` (a key id) is recorded in the events. Each reveal is a
        ``reveal.app_code`` / ``reveal.phrase`` event without the code or phrase.
        Raises :class:`NotFound` or :class:`RevealRefused` (its ``reason`` says why).
        """
        now = self.dep.now(now)
        at = to_epoch(now)
        limits = self.dep.config.limits
        t, c, r, p = schema.tickets, schema.customers, schema.reveals, schema.enrolled_proofs
        error: RevealRefused | None = None
        with self.dep.store.write(lock=ENROLMENT_LOCK) as conn:
            row = conn.execute(select(t).where(t.c.ticket_id == ticket_id,
                                               t.c.issuer_id == self.dep.issuer_id)).first()
            if row is None:
                raise NotFound(f"no ticket {ticket_id!r}")
            if agent_id is not None and not equal(agent_id, row.agent_id):
                raise RevealRefused("this call is not yours: only the agent who placed it can "
                                    "reveal", reason="not_your_ticket")
            state = states.effective_state(row.state, row.expires_at, at)
            if state not in states.LIVE:
                raise RevealRefused(f"the call is {state}: nothing is revealed for it",
                                    reason="not_live")
            if row.handle is None:
                raise RevealRefused("the ticket names no customer: nothing to reveal",
                                    reason="no_customer")
            if conn.execute(select(c.c.handle).where(c.c.issuer_id == self.dep.issuer_id,
                                                     c.c.handle == row.handle)).first() is None:
                raise RevealRefused("the customer was forgotten: nothing is left to reveal",
                                    reason="forgotten")
            proofs = {x.kind: x for x in conn.execute(select(p).where(
                p.c.issuer_id == self.dep.issuer_id, p.c.handle == row.handle,
                p.c.confirmed.is_(True))).all()}
            if not proofs:
                raise RevealRefused("the customer has no app code or phrase enrolled: nothing "
                                    "to reveal", reason="not_enrolled")
            what = [k for k in KINDS if k in proofs]
            facts: dict[str, Any] = {"agent_id": row.agent_id, **events.by_api_key(api_key)}
            connected = row.connected_at is not None
            if not connected:
                self.dep.record(conn, events.REVEAL_UNCONNECTED, now, ticket_id=ticket_id,
                                allowed=allow_unconnected, **facts)
                if not allow_unconnected:
                    error = RevealRefused(
                        "the dialer has not reported this call connected: reveal only during "
                        "the call (the dialer reports it with `tickets connected`)",
                        reason="not_connected")
            if error is None:
                error = self._over_cap(conn, row, at, limits.reveals_per_agent_hour,
                                       limits.reveals_per_customer_hour)
                if error is not None:
                    self.dep.record(conn, events.REVEAL_CAPPED, now, ticket_id=ticket_id,
                                    cap=error.reason, **facts)
            if error is None:
                conn.execute(insert(r).values(issuer_id=self.dep.issuer_id, at=at,
                                              agent_id=row.agent_id, handle=row.handle,
                                              ticket_id=ticket_id))
                out = Revealed(ticket_id)
                if TOTP in proofs:
                    secret = self._unseal(proofs[TOTP].sealed, row.handle, TOTP)
                    left = otp.valid_for(now)
                    until = from_epoch(at + left)
                    out = Revealed(ticket_id, app_code=otp.code_at(secret, now),
                                   app_code_valid_for=left, app_code_until=until)
                    if left < NEXT_CODE_BELOW:  # about to change: the next one too
                        out = replace(out, next_app_code=otp.code_at(secret, at + left),
                                      next_app_code_until=from_epoch(at + left + otp.PERIOD))
                    self.dep.record(conn, events.REVEAL_APP_CODE, now, ticket_id=ticket_id,
                                    what=what, connected=connected, **facts)
                if PHRASE in proofs:
                    phrase = self._unseal(proofs[PHRASE].sealed, row.handle, PHRASE)
                    out = replace(out, phrase=phrase)
                    self.dep.record(conn, events.REVEAL_PHRASE, now, ticket_id=ticket_id,
                                    what=what, connected=connected, **facts)
                return out
        raise error

    def _over_cap(self, conn: Connection, ticket: Any, at: int, per_agent: int,
                  per_customer: int) -> RevealRefused | None:
        r = schema.reveals
        since = at - CAP_WINDOW_SECONDS
        conn.execute(delete(r).where(r.c.issuer_id == self.dep.issuer_id, r.c.at <= since))
        count = select(func.count()).select_from(r).where(r.c.issuer_id == self.dep.issuer_id,
                                                          r.c.at > since)
        by_agent = conn.execute(count.where(r.c.agent_id == ticket.agent_id)).scalar_one()
        if by_agent >= per_agent:
            return RevealRefused(f"agent {ticket.agent_id} has made {by_agent} reveals in the "
                                 f"last hour, the most allowed ({per_agent} an hour)",
                                 reason="agent_cap")
        by_customer = conn.execute(count.where(r.c.handle == ticket.handle)).scalar_one()
        if by_customer >= per_customer:
            return RevealRefused(f"this customer's proofs were revealed {by_customer} times in "
                                 f"the last hour, the most allowed ({per_customer} an hour)",
                                 reason="customer_cap")
        return None

    # --- the app call status and coverage -------------------------------------------------------

    def call_status(self, customer_ref: str, *, now: datetime | None = None,
                    lang: str = "en") -> dict[str, Any]:
        """Is the company calling this customer now? ``{"calling": True, "agent_name",
        "department", "reason" (the text in ``lang``), "reason_code", "started_at",
        "expires_at"}`` for the newest live ticket of the customer; else ``{"calling": False}``,
        with ``last_call`` (``at``, ``agent_name``, ``department``, ``reason``, ``reason_code``)
        when a call was placed to them in the last :data:`LAST_CALL_DAYS` days (a withdrawn
        ticket is no call), so the app can say "We are not calling you now. Our last call was
        on 3 Dec from Mei Lin." Names and the reason are in ``lang`` where the registry has
        them. Writes nothing, not even a handle."""
        at = to_epoch(self.dep.now(now))
        if lang not in LANGUAGES:
            raise InputError(f"the language must be one of {', '.join(LANGUAGES)}",
                             reason="bad_lang")
        ref_hash = customer_ref_hash(self.dep, customer_ref)
        iss = self.dep.issuer_id
        t, c, a, rs = schema.tickets, schema.customers, schema.agents, schema.reasons
        query = (
            select(t.c.issued_at, t.c.expires_at, t.c.reason, t.c.state,
                   a.c.agent_id, a.c.name, a.c.department, a.c.enabled, a.c.name_zh_hant,
                   a.c.name_zh_hans, a.c.department_zh_hant, a.c.department_zh_hans,
                   rs.c.text_en, rs.c.text_zh_hant, rs.c.text_zh_hans)
            .select_from(t.join(c, and_(c.c.issuer_id == t.c.issuer_id, c.c.handle == t.c.handle))
                         .join(a, and_(a.c.issuer_id == t.c.issuer_id,
                                       a.c.agent_id == t.c.agent_id))
                         .outerjoin(rs, and_(rs.c.issuer_id == t.c.issuer_id,
                                             rs.c.code == t.c.reason)))
            .where(c.c.issuer_id == iss, c.c.ref_hash == ref_hash, t.c.issuer_id == iss)
            .order_by(t.c.issued_at.desc()).limit(1))
        with self.dep.store.read() as conn:
            live = conn.execute(query.where(t.c.state.in_(sorted(states.LIVE)),
                                            t.c.expires_at > at)).first()
            last = None if live is not None else conn.execute(query.where(
                t.c.state != states.REVOKED,
                t.c.issued_at > at - LAST_CALL_DAYS * 86400, t.c.issued_at <= at)).first()
        if live is not None:
            return {"calling": True, **self._who_called(live, lang),
                    "started_at": iso(from_epoch(live.issued_at)),
                    "expires_at": iso(from_epoch(live.expires_at))}
        if last is None:
            return {"calling": False}
        return {"calling": False, "last_call": {"at": iso(from_epoch(last.issued_at)),
                                                **self._who_called(last, lang)}}

    @staticmethod
    def _who_called(row: Any, lang: str) -> dict[str, Any]:
        """The agent, the department and the reason of a call, in ``lang`` where there is a
        text in it (the given name else)."""
        agent = agent_from_row(row)
        text = {"en": row.text_en, "zh-Hant": row.text_zh_hant, "zh-Hans": row.text_zh_hans}
        return {"agent_name": agent.name_in(lang), "department": agent.department_in(lang),
                "reason": text[lang] or row.reason, "reason_code": row.reason}

    def coverage(self, day: date, *, tz: tzinfo = UTC) -> dict[str, Any]:
        """Tickets per department on ``day`` (midnight to midnight in ``tz``), with every
        department of an enabled agent listed — a team with no tickets shows 0, since "we are
        not calling you" is only true if every team issues tickets."""
        start = datetime.combine(day, time(0), tzinfo=tz)
        lo, hi = to_epoch(start), to_epoch(start + timedelta(days=1))
        iss = self.dep.issuer_id
        t, a = schema.tickets, schema.agents
        with self.dep.store.read() as conn:
            issued = conn.execute(
                select(a.c.department, func.count(t.c.ticket_id),
                       func.count(distinct(t.c.agent_id)))
                .select_from(t.join(a, and_(a.c.issuer_id == t.c.issuer_id,
                                            a.c.agent_id == t.c.agent_id)))
                .where(t.c.issuer_id == iss, t.c.issued_at >= lo, t.c.issued_at < hi)
                .group_by(a.c.department)).all()
            staffed = conn.execute(
                select(a.c.department, func.count()).where(a.c.issuer_id == iss,
                                                           a.c.enabled.is_(True))
                .group_by(a.c.department)).all()
        counts = {d: (int(n), int(m)) for d, n, m in issued}
        agents = {d: int(n) for d, n in staffed}
        names = sorted(set(counts) | set(agents), key=lambda d: (d is None, d or ""))
        rows = [{"department": d, "tickets": counts.get(d, (0, 0))[0],
                 "agents_issuing": counts.get(d, (0, 0))[1], "agents": agents.get(d, 0)}
                for d in names]
        return {"day": day.isoformat(), "departments": rows,
                "silent": [r["department"] for r in rows if r["tickets"] == 0]}
