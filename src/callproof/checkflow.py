"""The customer's check flow (spec/callproof-v1.md §6), as the web page and other shells use it.

Every step takes the client token — the value of the claim cookie the page sets — and ``now``.
A step that cannot confirm the call raises :class:`~callproof.errors.CheckFailed` whose
``outcome`` the logs keep; the customer is shown one "we cannot confirm this call" page for all.

    >>> flow = CheckFlow.open("callproof-data")
    >>> client = new_client_token()                      # the claim cookie's value
    >>> step = flow.lookup("482 917 360", client, client_address="203.0.113.0")
    >>> step.dst                                          # "Does your phone end in 4712?"
    >>> step = flow.answer_number(step.ticket_id, client, yes=True)
    >>> step = flow.choose_word(step.ticket_id, client, "watermelon")
    >>> step.step
    'verified'
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, NamedTuple, NoReturn

from sqlalchemy import Connection, bindparam, delete, func, select, text, update

from callproof import seclog
from callproof.admin import Reason, agent_from_row, reason_from_row
from callproof.config import DataDir
from callproof.deployment import Deployment
from callproof.errors import CheckFailed, CodeError, Expired, NotYetValid, RevokedKey, TicketError
from callproof.protocol import events, states
from callproof.protocol.clock import Clock, from_epoch, to_epoch
from callproof.protocol.codes import normalise_code
from callproof.protocol.jws import peek_unverified_claims
from callproof.protocol.languages import LANGUAGES
from callproof.protocol.networks import client_keys
from callproof.protocol.privacy import equal
from callproof.protocol.ticket import CallTicket, verify_ticket
from callproof.protocol.words import WORDS, CheckWord
from callproof.store import schema
from callproof.store.events import queued_in_this_transaction

#: Rows the deployment's per-minute failure count is spread over (a failure adds to one; 64 so
#: that eight concurrent wrong codes seldom meet on one row — with 16 they did, measured).
FAILURE_SHARDS = 64
#: Where a transaction that started a wave leaves what the security log says after its commit.
_WAVE_STARTED = "callproof.wave_started"
#: Refusals of a lookup that are not failed lookups (spec §6.3): nothing counts them.
NOT_COUNTED = frozenset({"rate_limited", "too_many_tries", "tampered"})
#: The named lock logging finished minutes takes (housekeeping; never a lookup).
LOOKUPS_LOCK = "lookups"

NUMBER, WORD, VERIFIED = "number", "word", "verified"
#: The voice line's step for a ticket issued without a number: not claimed, not checkable there.
NO_NUMBER = "no_number"


def new_client_token() -> str:
    """A fresh claim-cookie value: 256 random bits."""
    return secrets.token_urlsafe(32)


def is_client_token(token: object) -> bool:
    """Whether ``token`` can be a client token (a claim-cookie value): 16–128 characters."""
    return isinstance(token, str) and 16 <= len(token) <= 128


class _Who(NamedTuple):
    """The keyed hashes a client's failed lookups count against (None: not given)."""

    address: str | None
    network: str | None


@dataclass(frozen=True)
class CheckStep:
    """Where the customer is: the next question and what the page needs to ask it."""

    ticket_id: str
    step: str  # "number", "word" or "verified"
    ticket: CallTicket
    reason: Reason | None
    choices: tuple[CheckWord, ...]
    #: The agent's name and department per language (``zh-Hant``, ``zh-Hans``) where the
    #: registry has them; pages in other languages show the names the ticket was signed with.
    agent_names: dict[str, str] = field(default_factory=dict)
    department_names: dict[str, str] = field(default_factory=dict)

    @property
    def dst(self) -> str | None:
        return self.ticket.dst


@dataclass(frozen=True)
class CodeReport:
    """The operator's read-only look at a code (``callproof check-code``)."""

    outcome: str
    state: str | None = None
    ticket: CallTicket | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"outcome": self.outcome}
        if self.ticket is not None:
            t = self.ticket
            out.update(state=self.state, ticket_id=t.jti, agent={"id": t.agent_id,
                       "name": t.agent_name, "department": t.department}, reason=t.reason,
                       hint=t.dst, expires_at=from_epoch(t.exp).isoformat())
        return out


class _Refused(Exception):
    """Carries a CheckFailed out of a transaction that must still commit its records."""

    def __init__(self, failure: CheckFailed) -> None:
        self.failure = failure


class CheckFlow:
    """The customer-side steps: lookup (claim), the phone question, the check word."""

    def __init__(self, deployment: Deployment) -> None:
        self.dep = deployment

    @classmethod
    def open(cls, data_dir: str | os.PathLike[str] | DataDir | None = None, *,
             clock: Clock | None = None) -> CheckFlow:
        return cls(Deployment.open(data_dir, clock=clock))

    def __repr__(self) -> str:
        return f"CheckFlow({self.dep.issuer_id!r})"

    # --- step 1: the code ------------------------------------------------------------------

    def lookup(self, code_text: str, client_token: str, *, client_address: str | None = None,
               now: datetime | None = None, lang: str | None = None) -> CheckStep:
        """Find the ticket for a typed code and claim it for this client.

        ``lang``, the check page's language, is kept with the claim: the agent's console shows
        the check word as the customer sees it (not personal data; other values are ignored).

        Raises :class:`~callproof.errors.CodeError` (format, typo) before any lookup — those are
        not failed lookups — and :class:`CheckFailed` with outcome ``rate_limited``,
        ``too_many_tries``, ``not_found``, ``expired``, ``closed``, ``revoked``, ``failed``,
        ``claimed_elsewhere`` or ``tampered``.
        """
        # (0): normalise the code; the client token is 16–128 characters.
        code = normalise_code(code_text)
        _check_client_token(client_token)
        at = self.dep.now(now)
        client = self.dep.hash_keys.client_hash(client_token)
        who = self._who(client_address)
        page_lang = lang if lang in LANGUAGES else None
        return self._run(lambda conn: self._lookup(conn, code, client, who, at, page_lang))

    def _who(self, client_address: str | None) -> _Who:
        """The keyed hashes a failed lookup from ``client_address`` counts against."""
        if not client_address:
            return _Who(None, None)
        address, network = client_keys(client_address)
        hashed = self.dep.hash_keys.client_hash
        return _Who(hashed(address), hashed(network) if network else None)

    def wave(self, *, now: datetime | None = None) -> datetime | None:
        """Until when a wave of wrong codes has the deployment refusing lookups from clients and
        networks with recent failures (None: no wave). Agents and the fraud desk are shown it."""
        at = to_epoch(self.dep.now(now))
        with self.dep.store.read() as conn:
            open_until = conn.execute(_BREAKER).scalar()
        return from_epoch(open_until) if open_until is not None and at < open_until else None

    def _run(self, step: Callable[[Connection], CheckStep]) -> CheckStep:
        """Run one step in a write transaction. A refusal still commits what it recorded (the
        failed-lookup count, the failed state, the alert) before it is raised."""
        failure: CheckFailed | None = None
        with self.dep.store.write() as conn:
            try:
                try:
                    result = step(conn)
                except _Refused as refused:
                    failure = refused.failure
            finally:
                wave = conn.info.pop(_WAVE_STARTED, None)
        if wave is not None:  # said only once the wave's start is committed
            seclog.event("wave.started", level=logging.WARNING, **wave)
        if failure is not None:
            raise failure
        return result

    def _lookup(self, conn: Connection, code: str, client: str, who: _Who,
                at: datetime, lang: str | None = None, *, by_phone: bool = False) -> CheckStep:
        """Spec §6.3 steps 1–7 (step 0 ran in :meth:`lookup`), in the spec's order:

        (1) this client's and its network's failures, and the wave; (2) the live code; (3) a ticket
        that is over; (4) the ticket verifies now and its cdh binds it to this code; (5) already
        claimed: this client's step, or a relay that ends the ticket; (6) the code's window;
        (7) claim it for this client.

        ``by_phone`` (the voice line only, :func:`check_by_phone`): a ticket closed before
        anyone claimed it is claimable until ``exp``, the claim window is ``exp`` (the call-back
        comes after the call), and a ticket without a number is returned unclaimed (step
        ``no_number``).
        """
        now = to_epoch(at)
        limits = self.dep.config.limits
        # (1): this client's and its network's failures; during a wave (the deployment's budget
        # spent), only clients and networks with no recent failure are looked up.
        if who.address is None:
            open_until = conn.execute(_BREAKER).scalar()
            mine = network = 0
        else:  # the breaker and both counts in one statement (one round trip)
            since = now - limits.client_window_seconds
            open_until, mine, network = conn.execute(_GATE, {
                "address": who.address, "network": who.network,
                "since": since - since % 60}).one()
        wave = open_until is not None and now < open_until
        if who.address is None:
            if wave:
                raise CheckFailed("rate_limited", "lookups are paused after too many failures")
        else:
            if mine >= limits.client_failure_limit or network >= limits.network_failure_limit:
                raise CheckFailed("too_many_tries", "too many failed lookups from this client")
            if wave and (mine or network):
                raise CheckFailed("rate_limited", "a wave of wrong codes: this client's network "
                                                  "had failures")
        # (2): the live code.
        code_hash = self.dep.hash_keys.code_hash(code)
        link = conn.execute(_LIVE_CODE, {"h": code_hash}).first()
        row = self._row(conn, link.ticket_id, lock=True) if link else None
        if row is None:
            self._fail_lookup(conn, at, who, "not_found", None)
        # (3): a ticket that is over refuses without further checks.
        state = states.effective_state(row.state, row.expires_at, now)
        after_call = by_phone and state == states.CLOSED and row.claimed_by is None and \
            now < row.expires_at  # the voice line's after-the-call check
        if state not in states.LIVE and not after_call:
            self._fail_lookup(conn, at, who, state, row.ticket_id)
        # (4): the ticket verifies now, and its cdh binds it to exactly this code.
        ticket = self._verified(conn, row, code, at, who)
        if ticket is None:
            self._fail_lookup(conn, at, who, "revoked", row.ticket_id)
        # The voice line and a ticket without a number: the network cannot answer for it, so
        # it is not claimed (the page can still check it) — but only after steps 5 and 6.
        no_number = by_phone and ticket.dst is None
        if no_number and after_call:
            self._fail_lookup(conn, at, who, states.CLOSED, row.ticket_id)
        # (5): already claimed — by this device (where it is), or by another (a relay).
        if row.claimed_by is not None:
            if equal(row.claimed_by, client) and not no_number:
                return self._step(conn, row, ticket)  # the same device again: where it is
            # Another device has this code: the call is being relayed. End it.
            self._end(conn, row, at, states.CAUSE_CLAIMED_ELSEWHERE, alert=True)
            self._fail_lookup(conn, at, who, "claimed_elsewhere", row.ticket_id)
        # (6): the code's window is over (the voice line's after-the-call check: ``exp``; a
        # ticket without a number, never claimed by phone: the page's code window).
        if now >= (row.expires_at if by_phone and not no_number else row.code_until):
            self._fail_lookup(conn, at, who, "expired", row.ticket_id)
        if no_number:
            return replace(self._step(conn, row, ticket), step=NO_NUMBER, choices=())
        # (7): claim it for this client.
        claimed = states.TRANSITIONS[(state, "voice_claim" if after_call else "claim")]
        conn.execute(update(schema.tickets).where(schema.tickets.c.ticket_id == row.ticket_id)
                     .values(state=claimed, claimed_by=client, updated_at=now,
                             claim_lang=lang))
        self.dep.record(conn, events.TICKET_CLAIMED, at, ticket_id=row.ticket_id,
                        **({"channel": "voice"} if by_phone else {}))
        return self._step(conn, self._row(conn, row.ticket_id), ticket)

    def _verified(self, conn: Connection, row: Any, code: str, at: datetime,
                  who: _Who) -> CallTicket | None:
        """The stored ticket, verified against today's keys; None if its key is revoked.

        Refuses (``tampered``, with an alert event) a ticket that does not verify or whose
        ``cdh`` does not bind it to the typed code: the database was changed behind our back.
        """
        try:
            ticket = verify_ticket(row.token, self.dep.keyset(conn), now=at,
                                   issuer=self.dep.issuer_id, skew=self.dep.config.limits.skew)
        except RevokedKey:
            return None
        except (Expired, NotYetValid) as e:
            # A matter of clocks (servers more than the skew apart), not of tampering.
            self._fail_lookup(conn, at, who, e.outcome, row.ticket_id)
        except TicketError as e:
            self._tampered(conn, at, row.ticket_id, e.outcome)
        expected = self.dep.hash_keys.cdh(ticket.iss, ticket.jti, code)
        if ticket.jti != row.ticket_id or not equal(ticket.cdh, expected):
            self._tampered(conn, at, row.ticket_id, "cdh_mismatch")
        return ticket

    def _tampered(self, conn: Connection, at: datetime, ticket_id: str, why: str) -> NoReturn:
        self.dep.record(conn, events.TAMPERED, at, ticket_id=ticket_id, check=why)
        raise _Refused(CheckFailed("tampered", "the stored ticket does not match the code",
                                   ticket_id=ticket_id))

    def current_step(self, ticket_id: str, client_token: str, *,
                     now: datetime | None = None) -> CheckStep:
        """Where this client is in the check of a ticket it claimed (read-only; for a page shown
        again, e.g. in another language). Raises :class:`CheckFailed` like the steps do."""
        at = self.dep.now(now)
        client = self.dep.hash_keys.client_hash(client_token)
        with self.dep.store.read() as conn:
            row, ticket = self._claimed(conn, ticket_id, client, at, record=False)
            return self._step(conn, row, ticket)

    # --- step 2: the phone question --------------------------------------------------------

    def answer_number(self, ticket_id: str, client_token: str, *, yes: bool,
                      now: datetime | None = None) -> CheckStep:
        """"Does the phone in your hand end in 4712?" — "No" ends the ticket and alerts."""
        at = self.dep.now(now)
        client = self.dep.hash_keys.client_hash(client_token)

        def step(conn: Connection) -> CheckStep:
            row, ticket = self._claimed(conn, ticket_id, client, at)
            if row.state != states.CLAIMED or ticket.dst is None:
                raise CheckFailed("wrong_step", "the phone question is not the next step",
                                  ticket_id=ticket_id)
            if not yes:
                self.dep.record(conn, events.NUMBER_DENIED, at, ticket_id=ticket_id)
                self._end(conn, row, at, states.CAUSE_NUMBER_DENIED, alert=False)
                raise _Refused(CheckFailed("number_denied", "the customer's phone is another",
                                           ticket_id=ticket_id))
            self._move(conn, ticket_id, states.NUMBER_CONFIRMED, at)
            self.dep.record(conn, events.NUMBER_CONFIRMED, at, ticket_id=ticket_id)
            return self._step(conn, self._row(conn, ticket_id), ticket)

        return self._run(step)

    # --- step 3: the check word ------------------------------------------------------------

    def choose_word(self, ticket_id: str, client_token: str, word_id: str, *,
                    now: datetime | None = None) -> CheckStep:
        """The customer taps the word the agent said: right → verified; wrong → failed."""
        at = self.dep.now(now)
        client = self.dep.hash_keys.client_hash(client_token)

        def step(conn: Connection) -> CheckStep:
            row, ticket = self._claimed(conn, ticket_id, client, at)
            due = row.state == states.NUMBER_CONFIRMED or \
                (row.state == states.CLAIMED and ticket.dst is None)
            if not due:
                raise CheckFailed("wrong_step", "the check word is not the next step",
                                  ticket_id=ticket_id)
            if not isinstance(word_id, str) or not equal(word_id, row.word_id):
                self.dep.record(conn, events.WORD_WRONG, at, ticket_id=ticket_id)
                self._end(conn, row, at, states.CAUSE_WRONG_WORD, alert=False)
                raise _Refused(CheckFailed("wrong_answer", "not the agent's check word",
                                           ticket_id=ticket_id))
            self._move(conn, ticket_id, states.VERIFIED, at)
            self.dep.record(conn, events.TICKET_VERIFIED, at, ticket_id=ticket_id)
            return self._step(conn, self._row(conn, ticket_id), ticket)

        return self._run(step)

    # --- shared steps ----------------------------------------------------------------------

    def _claimed(self, conn: Connection, ticket_id: str, client: str,
                 at: datetime, *, record: bool = True) -> tuple[Any, CallTicket]:
        """The ticket this client claimed, still live and still verifying; else CheckFailed."""
        row = self._row(conn, ticket_id, lock=record) if isinstance(ticket_id, str) else None
        if row is None or row.claimed_by is None or not equal(row.claimed_by, client):
            raise CheckFailed("not_claimed", "this device has not checked this code")
        state = states.effective_state(row.state, row.expires_at, to_epoch(at))
        if state not in states.LIVE:
            raise CheckFailed(state, f"the call check has {state}", ticket_id=ticket_id)
        try:
            ticket = verify_ticket(row.token, self.dep.keyset(conn), now=at,
                                   issuer=self.dep.issuer_id, skew=self.dep.config.limits.skew)
        except RevokedKey as e:
            raise CheckFailed("revoked", "the signing key was revoked",
                              ticket_id=ticket_id) from e
        except (Expired, NotYetValid) as e:
            raise CheckFailed(e.outcome, str(e), ticket_id=ticket_id) from e
        except TicketError as e:
            if not record:
                raise CheckFailed("tampered", "the stored ticket does not verify",
                                  ticket_id=ticket_id) from e
            self._tampered(conn, at, ticket_id, e.outcome)
        return row, ticket

    def _row(self, conn: Connection, ticket_id: str, *, lock: bool = False) -> Any:
        """The ticket's row; with ``lock``, locked to the end of the transaction (PostgreSQL:
        ``FOR UPDATE``; SQLite has one writer anyway), so each step of one ticket sees the last
        one's result while other tickets' steps go on at once."""
        return conn.execute(_TICKET_FOR_UPDATE if lock else _TICKET, {"t": ticket_id}).first()

    def _move(self, conn: Connection, ticket_id: str, state: str, at: datetime) -> None:
        conn.execute(update(schema.tickets).where(schema.tickets.c.ticket_id == ticket_id)
                     .values(state=state, updated_at=to_epoch(at)))

    def _end(self, conn: Connection, row: Any, at: datetime, cause: str, *, alert: bool) -> None:
        conn.execute(update(schema.tickets).where(schema.tickets.c.ticket_id == row.ticket_id)
                     .values(state=states.FAILED, cause=cause, updated_at=to_epoch(at)))
        if alert:
            self.dep.record(conn, events.CLAIMED_ELSEWHERE, at, ticket_id=row.ticket_id)
        self.dep.record(conn, events.TICKET_FAILED, at, ticket_id=row.ticket_id, cause=cause)

    def _step(self, conn: Connection, row: Any, ticket: CallTicket) -> CheckStep:
        if row.state == states.VERIFIED:
            step = VERIFIED
        elif row.state == states.CLAIMED and ticket.dst is not None:
            step = NUMBER
        else:
            step = WORD
        reason_row = conn.execute(_REASON, {"issuer": row.issuer_id, "code": row.reason}).first()
        choices = tuple(WORDS[w] for w in json.loads(row.word_choices)) if step == WORD else ()
        # The names per language from the registry, for the agent the ticket names (as signed).
        agent_row = conn.execute(_AGENT, {"issuer": row.issuer_id, "agent": row.agent_id}).first()
        agent = agent_from_row(agent_row) if agent_row is not None else None
        return CheckStep(ticket_id=row.ticket_id, step=step, ticket=ticket,
                         reason=reason_from_row(reason_row) if reason_row else None,
                         choices=choices,
                         agent_names=dict(agent.names) if agent else {},
                         department_names=dict(agent.department_names) if agent else {})

    # --- failed lookups: per client, per minute, and the breaker ---------------------------

    def _fail_lookup(self, conn: Connection, at: datetime, who: _Who, outcome: str,
                     ticket_id: str | None) -> NoReturn:
        """Count a failed lookup, maybe trip the breaker, and refuse with ``outcome``."""
        self._count_failure(conn, at, who)
        raise _Refused(CheckFailed(outcome, f"cannot confirm: {outcome}", ticket_id=ticket_id))

    def _count_failure(self, conn: Connection, at: datetime, who: _Who) -> None:
        """Count a failed lookup for the client and for the deployment; trip the breaker when
        this minute's failures pass the budget (one conditional UPDATE: one trip, one alert).
        A client's failure counts for its address and its network (spec §10).

        Each count is one upsert (INSERT … ON CONFLICT DO UPDATE): the address's and the
        network's in one statement, then the deployment's on one of its shards, so unrelated
        customers' failures do not queue on one row; the shard comes last, so its row lock is
        held only to the commit. Minutes that left the window are deleted by housekeeping
        (:meth:`forget_old_failures`), not here.
        """
        now = to_epoch(at)
        minute = now - now % 60
        limits = self.dep.config.limits
        statements = _upserts(self.dep.store.dialect)
        keys = [k for k in dict.fromkeys((who.address, who.network)) if k is not None]
        if keys:
            conn.execute(statements[len(keys)], {"minute": minute, "k0": keys[0],
                                                 "k1": keys[-1]})
        conn.execute(statements[0], {"minute": minute, "shard": secrets.randbelow(FAILURE_SHARDS)})
        t = schema.failed_lookups
        count = conn.execute(select(func.sum(t.c.count)).where(t.c.minute == minute)).scalar_one()
        if count > limits.global_failure_budget:
            b = schema.breaker
            until = now + limits.breaker_cooldown_seconds
            tripped = conn.execute(update(b).where(b.c.id == 1, b.c.open_until <= now)
                                   .values(open_until=until, tripped_at=now)).rowcount
            if tripped:
                self.dep.record(conn, events.BUDGET_TRIPPED, at, minute=minute, count=count,
                                budget=limits.global_failure_budget, open_until=until)
                conn.info[_WAVE_STARTED] = {"count": int(count), "open_until": until,
                                            "budget": limits.global_failure_budget}
        if self.dep.store.dialect == "postgresql" and not queued_in_this_transaction(conn):
            # Only counts changed (no event, no ticket: a ticket changes with its event): the
            # commit need not wait for the WAL flush. A crash may forget the last fraction of a
            # second of counts — never an event, a claim or a ticket's state — and the shard's
            # row lock is not held through a disk flush, which under a flood of wrong codes
            # made the shard rows a queue.
            conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")

    def forget_old_failures(self, *, now: datetime | None = None) -> int:
        """Delete the per-client failure counts of minutes that have left every window that
        reads them (housekeeping runs this; a lookup only adds to its counts). Returns how many
        rows went."""
        at = to_epoch(self.dep.now(now))
        limits = self.dep.config.limits
        # client_failures also holds the staff counters (callproof.counters), which read
        # windows of their own: keep the longest window any of them reads, and at least an hour.
        keep = max(limits.client_window_seconds, limits.sign_in_window_seconds, 3600) + 60
        c = schema.client_failures
        with self.dep.store.write() as conn:
            return conn.execute(delete(c).where(c.c.minute < at - at % 60 - keep)).rowcount

    def _log_finished_minutes(self, conn: Connection, at: datetime, current: int) -> None:
        t = schema.failed_lookups
        done = conn.execute(select(t.c.minute, func.sum(t.c.count)).where(
            t.c.logged.is_(False), t.c.minute < current).group_by(t.c.minute)
            .order_by(t.c.minute)).all()
        for minute, count in done:
            self.dep.record(conn, events.LOOKUPS_FAILED, at, minute=minute, count=int(count))
        if done:
            conn.execute(update(t).where(t.c.logged.is_(False), t.c.minute < current)
                         .values(logged=True))

    def flush_failed_lookups(self, *, now: datetime | None = None) -> None:
        """Log the failed-lookup counts of every finished minute, one ``lookups.failed`` event
        each (housekeeping runs this every few seconds; one at a time, under its own lock)."""
        at = self.dep.now(now)
        epoch = to_epoch(at)
        with self.dep.store.write(lock=LOOKUPS_LOCK) as conn:
            self._log_finished_minutes(conn, at, epoch - epoch % 60)

    # --- the operator's read-only look -----------------------------------------------------

    def inspect_code(self, code_text: str, *, now: datetime | None = None) -> CodeReport:
        """What a code stands for, without claiming or counting anything."""
        try:
            code = normalise_code(code_text)
        except CodeError as e:
            return CodeReport(outcome="typo" if e.reason == "typo" else "malformed")
        at = self.dep.now(now)
        with self.dep.store.read() as conn:
            link = conn.execute(select(schema.live_codes.c.ticket_id).where(
                schema.live_codes.c.code_hash == self.dep.hash_keys.code_hash(code))).first()
            row = self._row(conn, link.ticket_id) if link else None
            if row is None:
                return CodeReport(outcome="not_found")
            keys = self.dep.keyset(conn)
        claims = peek_unverified_claims(row.token)  # our own row; its signature is checked below
        if claims is None:
            return CodeReport(outcome="tampered")
        ticket = CallTicket.from_claims(claims)
        if ticket.jti != row.ticket_id or \
                not equal(ticket.cdh, self.dep.hash_keys.cdh(ticket.iss, ticket.jti, code)):
            return CodeReport(outcome="tampered")
        state = states.effective_state(row.state, row.expires_at, to_epoch(at))
        if state in states.LIVE:
            try:
                verify_ticket(row.token, keys, now=at, skew=self.dep.config.limits.skew)
            except RevokedKey:
                state = states.REVOKED
            except TicketError:
                return CodeReport(outcome="tampered")
        if state in states.UNCLAIMED:
            outcome = "valid" if to_epoch(at) < row.code_until else "expired"
        elif state in states.LIVE:
            outcome = "claimed"
        else:
            outcome = state
        return CodeReport(outcome=outcome, state=state, ticket=ticket)


# Statements built once (building them costs more than running them; lookups are hot).
_BREAKER = select(schema.breaker.c.open_until).where(schema.breaker.c.id == 1)


def _failures_since(key: str) -> Any:
    c = schema.client_failures
    return select(func.coalesce(func.sum(c.c.count), 0)).where(
        c.c.client_hash == bindparam(key), c.c.minute >= bindparam("since")).scalar_subquery()


# A lookup's gate (spec §6.3 step 1): the breaker and the address's and the network's failures
# in the window (a NULL network matches no row: 0).
_GATE = select(_BREAKER.scalar_subquery(), _failures_since("address"), _failures_since("network"))
_UPSERTS: dict[str, tuple[Any, Any, Any]] = {}


def _upserts(dialect: str) -> tuple[Any, Any, Any]:
    """The failure counts' upserts, built once per dialect: [0] the deployment's shard of the
    minute, [1] one client key's minute, [2] two client keys' minutes in one statement."""
    found = _UPSERTS.get(dialect)
    if found is None:
        from sqlalchemy.dialects import postgresql, sqlite

        insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        t, c = schema.failed_lookups, schema.client_failures
        shard = insert(t).values(minute=bindparam("minute"), shard=bindparam("shard"), count=1,
                                 logged=False)
        shard = shard.on_conflict_do_update(index_elements=[t.c.minute, t.c.shard],
                                            set_={"count": t.c.count + 1})

        def clients(n: int) -> Any:
            # Text, not Core: SQLAlchemy does not cache a multi-row VALUES construct, and
            # compiling it cost more than running it. Valid on PostgreSQL and SQLite ≥ 3.24.
            rows = ", ".join(f"(:k{i}, :minute, 1)" for i in range(n))
            return text(f"INSERT INTO {c.name} (client_hash, minute, count) VALUES {rows} "  # noqa: S608
                        "ON CONFLICT (client_hash, minute) "
                        f"DO UPDATE SET count = {c.name}.count + 1")

        found = _UPSERTS[dialect] = (shard, clients(1), clients(2))
    return found
_LIVE_CODE = select(schema.live_codes.c.ticket_id).where(
    schema.live_codes.c.code_hash == bindparam("h"))
_TICKET = select(schema.tickets).where(schema.tickets.c.ticket_id == bindparam("t"))
_TICKET_FOR_UPDATE = _TICKET.with_for_update()
_REASON = select(schema.reasons).where(schema.reasons.c.issuer_id == bindparam("issuer"),
                                       schema.reasons.c.code == bindparam("code"))
_AGENT = select(schema.agents).where(schema.agents.c.issuer_id == bindparam("issuer"),
                                     schema.agents.c.agent_id == bindparam("agent"))


def _check_client_token(token: str) -> None:
    from callproof.errors import InputError

    if not is_client_token(token):
        raise InputError("the client token must be 16–128 characters", reason="bad_client")




# --- shells that know their client by something else than an address (the voice line) ---------


def lookup_as(flow: CheckFlow, code_text: str, client_token: str, *, client_key: str | None,
              network_key: str | None, now: datetime | None = None) -> CheckStep:
    """:meth:`CheckFlow.lookup` for a shell that names its client's keys itself (the voice
    line: the calling number, and its number block or trunk; spec/voice-line.md §5). The keys
    are hashed with the client key as addresses are; None counts against nothing (and during a
    wave is refused, like a client with no address)."""
    code, client, who, at = _shell_inputs(flow, code_text, client_token, client_key, network_key,
                                          now)
    return flow._run(lambda conn: flow._lookup(conn, code, client, who, at))


def _shell_inputs(flow: CheckFlow, code_text: str, client_token: str, client_key: str | None,
                  network_key: str | None,
                  now: datetime | None) -> tuple[str, str, _Who, datetime]:
    """The code, the hashed client token, the hashed client keys (no network without a client)
    and the time, for a shell that names its client's keys itself."""
    code = normalise_code(code_text)
    _check_client_token(client_token)
    hashed = flow.dep.hash_keys.client_hash
    who = _Who(hashed(client_key) if client_key else None,
               hashed(network_key) if network_key and client_key else None)
    return code, hashed(client_token), who, flow.dep.now(now)


def check_by_phone(flow: CheckFlow, code_text: str, client_token: str, phone_e164: str, *,
                   client_key: str | None, network_key: str | None,
                   now: datetime | None = None) -> CheckStep:
    """The voice line's whole check in one write transaction (spec/voice-line.md §2): the
    lookup and claim of :meth:`CheckFlow.lookup` (with the shell's own client keys, as
    :func:`lookup_as`), then the phone question answered by the network — the calling number's
    keyed hash against the one the ticket was issued for, in constant time — and no check word.

    - A match: ``ticket.number_confirmed`` then ``ticket.verified`` (``channel: "voice"``);
      step ``verified``.
    - Any other number is the relay case, "No" on the page: ``ticket.number_denied`` (an
      alert) and ``ticket.failed`` (``number_denied``); CheckFailed ``number_denied``.
    - A ticket issued without a number cannot be confirmed by phone: after the relay check (a
      ticket claimed on another device fails and alerts, as on the page) and the code window,
      it is not claimed, and the step is :data:`NO_NUMBER` (it stays checkable on the page).
    - A ticket the dialer closed before anyone claimed it is claimed here until its ``exp``
      (``closed`` → ``claimed``, action ``voice_claim``); the page still refuses it.
    """
    code, client, who, at = _shell_inputs(flow, code_text, client_token, client_key, network_key,
                                          now)

    def step(conn: Connection) -> CheckStep:
        found = flow._lookup(conn, code, client, who, at, by_phone=True)
        if found.step in (NO_NUMBER, VERIFIED):
            return found
        ticket_id, ticket = found.ticket_id, found.ticket
        row = flow._row(conn, ticket_id)
        if ticket.dst is None or row.phone_hash is None:  # pragma: no cover - _lookup returned
            raise CheckFailed("wrong_step", "no phone question", ticket_id=ticket_id)
        if row.state == states.CLAIMED:
            calling = flow.dep.hash_keys.phone_hash(row.issuer_id, phone_e164)
            if not equal(calling, row.phone_hash):
                flow.dep.record(conn, events.NUMBER_DENIED, at, ticket_id=ticket_id,
                                channel="voice")
                flow._end(conn, row, at, states.CAUSE_NUMBER_DENIED, alert=False)
                raise _Refused(CheckFailed("number_denied", "called from another phone",
                                           ticket_id=ticket_id))
            flow._move(conn, ticket_id, states.NUMBER_CONFIRMED, at)
            flow.dep.record(conn, events.NUMBER_CONFIRMED, at, ticket_id=ticket_id,
                            channel="voice")
            row = flow._row(conn, ticket_id)
        if row.state != states.NUMBER_CONFIRMED:  # pragma: no cover - claimed by this call
            raise CheckFailed("wrong_step", "not the voice line's step", ticket_id=ticket_id)
        flow._move(conn, ticket_id,
                   states.TRANSITIONS[(states.NUMBER_CONFIRMED, "network_verified")], at)
        flow.dep.record(conn, events.TICKET_VERIFIED, at, ticket_id=ticket_id, channel="voice")
        return flow._step(conn, flow._row(conn, ticket_id), ticket)

    return flow._run(step)
