"""The issuer: what call-center software calls when an agent starts an outbound call.

    >>> issuer = Issuer.open("callproof-data")
    >>> call = issuer.issue(agent_id="a-017", reason="refund", phone="+886912345678")
    >>> call.code_display                     # what the agent reads out: '482 917 360'
    >>> issuer.connected(call.ticket_id)      # the dialer: the customer picked up
    >>> issuer.status(call.ticket_id).check_word   # once the customer confirmed the number
    >>> issuer.close(call.ticket_id)          # the dialer: hung up

Issuing, and every later change of a ticket, is one transaction with its event.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers
from sqlalchemy import (
    Connection,
    String,
    bindparam,
    cast,
    insert,
    literal_column,
    null,
    select,
    true,
    union_all,
    update,
)

from callproof.admin import handle_for, import_key_file
from callproof.config import DataDir, passphrase
from callproof.deployment import Deployment
from callproof.errors import (
    BadClaims,
    ConfigError,
    InputError,
    NotFound,
    StoreError,
    TransitionRefused,
)
from callproof.proofs import offered_methods
from callproof.protocol import events, states
from callproof.protocol.clock import Clock, from_epoch, iso, to_epoch
from callproof.protocol.codes import display_code, new_code
from callproof.protocol.keys import ACTIVE, SigningKey
from callproof.protocol.privacy import new_ticket_id
from callproof.protocol.ticket import CallTicket, encode_ticket
from callproof.protocol.words import WORDS, CheckWord, pick_words
from callproof.store import schema
from callproof.store.events import read_events

#: The agent's alert for a voice-line caller put through to the team without being checked (a
#: ticket issued without a number: ``ticket.called_back`` with ``checked: false``).
UNCHECKED_CALL_BACK = "ticket.called_back_unchecked"


@dataclass(frozen=True)
class IssuedTicket:
    """A freshly issued ticket: the signed token and the call code for the agent to read."""

    ticket_id: str
    ticket: str
    code: str = field(repr=False)
    expires_at: datetime
    claims: CallTicket = field(repr=False)

    @property
    def code_display(self) -> str:
        return display_code(self.code)

    def to_json(self) -> dict[str, Any]:
        return {"ticket_id": self.ticket_id, "ticket": self.ticket, "code": self.code,
                "code_display": self.code_display, "expires_at": iso(self.expires_at)}


@dataclass(frozen=True)
class TicketStatus:
    """What the agent's screen shows: the state, the check word when it is due, the alerts."""

    ticket_id: str
    state: str
    check_word: CheckWord | None
    alerts: list[dict[str, Any]]
    has_number: bool
    expires_at: datetime
    agent_id: str  # who issued it (the console shows a ticket only to its agent); not in JSON

    def to_json(self, lang: str = "en") -> dict[str, Any]:
        out: dict[str, Any] = {"ticket_id": self.ticket_id, "state": self.state,
                               "alerts": self.alerts, "expires_at": iso(self.expires_at)}
        if self.check_word is not None:
            out["check_word"] = self.check_word.to_dict(lang)
        return out


def normalise_phone(phone: str) -> str:
    """The dialled number in E.164. Raises :class:`InputError` if it is not one."""
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException as e:
        raise InputError("the phone number must be in E.164 form, like +886912345678",
                         reason="bad_phone") from e
    if not phone.strip().startswith("+") or not phonenumbers.is_possible_number(number):
        raise InputError("the phone number must be in E.164 form, like +886912345678",
                         reason="bad_phone")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


class Issuer:
    """Issues call tickets for one issuer and follows them through the call."""

    def __init__(self, deployment: Deployment) -> None:
        self.dep = deployment
        self._signing_key: SigningKey | None = None

    @classmethod
    def open(cls, data_dir: str | os.PathLike[str] | DataDir | None = None, *,
             clock: Clock | None = None) -> Issuer:
        return cls(Deployment.open(data_dir, clock=clock))

    def __repr__(self) -> str:
        return f"Issuer({self.dep.issuer_id!r})"

    def issue(self, *, agent_id: str, reason: str, customer_ref: str | None = None,
              phone: str | None = None, ttl: int | None = None,
              methods: tuple[str, ...] = ("code",), now: datetime | None = None,
              api_key: str | None = None,
              in_transaction: Callable[[Connection, IssuedTicket], None] | None = None,
              ) -> IssuedTicket:
        """Issue a ticket for a call the dialer is placing now.

        ``api_key`` (a key id) is recorded in the ``ticket.issued`` event when an API key asked.
        ``in_transaction``, when given, is called with the ticket inside its own write
        transaction, after the ticket and its event (idempotency keeps its key there, so a crash
        leaves both or neither); whatever it raises undoes the ticket.

        Raises :class:`NotFound` for an unknown agent or reason, :class:`InputError` for a
        disabled one, a bad phone number or lifetime, :class:`ConfigError` when there is no
        active signing key, :class:`StoreError` when the database fails (nothing is kept then).
        """
        now = self.dep.now(now)
        limits = self.dep.config.limits
        ttl = limits.default_ttl_seconds if ttl is None else ttl
        if type(ttl) is not int or not limits.min_ttl_seconds <= ttl <= limits.max_ttl_seconds:
            raise InputError(f"the lifetime must be {limits.min_ttl_seconds}–"
                             f"{limits.max_ttl_seconds} seconds", reason="bad_ttl")
        e164 = normalise_phone(phone) if phone else None
        iat = to_epoch(now)
        exp = iat + ttl
        jti = new_ticket_id()
        word_id, choices = pick_words(limits.word_choices)
        iss = self.dep.issuer_id
        with self.dep.store.write() as conn:
            agent, key = self._registry_facts(conn, agent_id, reason)
            handle = handle_for(self.dep, conn, customer_ref, now) if customer_ref else None
            if handle:  # ``mth`` lists the enrolled proofs this call offers
                methods = (*methods, *(m for m in offered_methods(conn, iss, handle)
                                       if m not in methods))
            code, code_hash = self._reserve_code(conn, jti, iat, exp)
            claims = CallTicket(
                iss=iss, jti=jti, iat=iat, exp=exp, agent_id=agent_id,
                agent_name=agent.name, department=agent.department, reason=reason,
                subject=handle, dst=e164[-4:] if e164 else None, methods=methods,
                cdh=self.dep.hash_keys.cdh(iss, jti, code), kid=key.kid)
            try:  # never sign what our own verifier would refuse
                CallTicket.from_claims(claims.to_claims())
            except BadClaims as e:
                raise InputError(f"cannot issue: {e}", reason="bad_claims") from e
            token = encode_ticket(claims, key)
            conn.execute(_INSERT_TICKET, dict(
                ticket_id=jti, issuer_id=iss, kid=key.kid, token=token, agent_id=agent_id,
                reason=reason, handle=handle, dst=claims.dst,
                phone_hash=self.dep.hash_keys.phone_hash(iss, e164) if e164 else None,
                code_hash=code_hash, word_id=word_id, word_choices=json.dumps(choices),
                state=states.ISSUED, cause=None, claimed_by=None, issued_at=iat,
                code_until=iat + min(limits.code_window_seconds, ttl), expires_at=exp,
                connected_at=None, updated_at=iat))
            self.dep.record(conn, events.TICKET_ISSUED, now, ticket_id=jti, ticket=token,
                            **events.by_api_key(api_key))
            issued = IssuedTicket(ticket_id=jti, ticket=token, code=code,
                                  expires_at=from_epoch(exp), claims=claims)
            if in_transaction is not None:
                in_transaction(conn, issued)
        return issued

    def _registry_facts(self, conn: Connection, agent_id: str,
                        reason: str) -> tuple[Any, SigningKey]:
        """The agent's row and the active signing key, after checking the agent and the reason
        exist and are enabled — one query for all three (issuing is a hot path)."""
        rows = conn.execute(_REGISTRY_FACTS, {"issuer": self.dep.issuer_id, "agent": agent_id,
                                              "reason": reason}).all()
        agent = next((r for r in rows if r.kind == "agent"), None)
        if agent is None:
            raise NotFound(f"no agent {agent_id!r} in the agent registry")
        if not agent.enabled:
            raise InputError(f"agent {agent_id!r} is disabled", reason="disabled")
        found = next((r for r in rows if r.kind == "reason"), None)
        if found is None:
            raise NotFound(f"no reason {reason!r} in the reason catalogue")
        if not found.enabled:
            raise InputError(f"reason {reason!r} is disabled", reason="disabled")
        kids = [r.name for r in rows if r.kind == "key"]
        if len(kids) != 1:
            raise ConfigError("no active signing key: run `callproof keys rotate`"
                              if not kids else "more than one active signing key")
        if self._signing_key is None or self._signing_key.kid != kids[0]:
            self._signing_key = load_signing_key(self.dep, conn, kids[0])
        return agent, self._signing_key

    def _reserve_code(self, conn: Connection, jti: str, now: int, exp: int) -> tuple[str, str]:
        """A code no live ticket holds, reserved for ``jti`` (the primary key decides races)."""
        t = schema.live_codes
        for _ in range(20):
            code = new_code()
            code_hash = self.dep.hash_keys.code_hash(code)
            if self.dep.store.insert_if_absent(conn, t, {"code_hash": code_hash,
                                                         "ticket_id": jti, "expires_at": exp}):
                return code, code_hash
            # Taken: reuse it only if its ticket is no longer live.
            if conn.execute(_TAKE_OVER_CODE, {"h": code_hash, "now": now, "jti": jti,
                                              "exp": exp}).rowcount:
                return code, code_hash
        raise StoreError("could not find a free call code")  # pragma: no cover - 10^8 codes

    # --- what the dialer and the agent report ---------------------------------------------

    # ``api_key`` (a key id) is recorded in the step's event when an API key asked.

    def connected(self, ticket_id: str, *, now: datetime | None = None,
                  api_key: str | None = None) -> str:
        """The dialer reports that the customer picked up. Returns the new state."""
        return self._dialer_step(ticket_id, "connected", now, api_key)

    def close(self, ticket_id: str, *, now: datetime | None = None,
              api_key: str | None = None) -> str:
        """The dialer reports the hang-up: the code no longer confirms anything."""
        return self._dialer_step(ticket_id, "close", now, api_key)

    def revoke_ticket(self, ticket_id: str, *, now: datetime | None = None,
                      api_key: str | None = None) -> str:
        """The issuer withdraws a ticket it should not have issued."""
        return self._dialer_step(ticket_id, "revoke", now, api_key)

    def _dialer_step(self, ticket_id: str, action: str, now: datetime | None,
                     api_key: str | None = None) -> str:
        at = self.dep.now(now)
        t = schema.tickets
        with self.dep.store.write() as conn:
            row = self._ticket(conn, ticket_id, lock=True)
            state = states.effective_state(row.state, row.expires_at, to_epoch(at))
            values: dict[str, Any] = {"updated_at": to_epoch(at)}
            if action == "connected":
                # Known at any live state (the reveal of enrolled proofs needs it); moves only
                # an unclaimed ticket on.
                if state not in states.LIVE:
                    raise TransitionRefused(f"the ticket is {state}", state=state)
                if row.connected_at is not None:
                    return state
                values["connected_at"] = to_epoch(at)
                new = states.TRANSITIONS.get((state, action), state)
                event = events.TICKET_CONNECTED
            elif action == "close":
                if state in (states.FAILED, states.REVOKED):
                    new = state  # the hang-up is recorded; the failure stays what it was
                elif (state, action) in states.TRANSITIONS:
                    new = states.TRANSITIONS[(state, action)]
                else:
                    raise TransitionRefused(f"the ticket is already {state}", state=state)
                event = events.TICKET_CLOSED
            else:
                if (state, action) not in states.TRANSITIONS:
                    raise TransitionRefused(f"a {state} ticket cannot be revoked", state=state)
                new = states.TRANSITIONS[(state, action)]
                event = events.TICKET_REVOKED
            values["state"] = new
            conn.execute(update(t).where(t.c.ticket_id == ticket_id).values(**values))
            self.dep.record(conn, event, at, ticket_id=ticket_id, **events.by_api_key(api_key))
        return new

    def _ticket(self, conn: Connection, ticket_id: str, *, lock: bool = False) -> Any:
        """The issuer's ticket row (NotFound else); with ``lock``, locked for this transaction
        so a dialer's step and a customer's step of one ticket take turns."""
        t = schema.tickets
        query = select(t).where(t.c.ticket_id == ticket_id, t.c.issuer_id == self.dep.issuer_id)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"no ticket {ticket_id!r}")
        return row

    def status(self, ticket_id: str, *, now: datetime | None = None) -> TicketStatus:
        """The agent's view. The check word shows only once it is the customer's next step."""
        at = to_epoch(self.dep.now(now))
        with self.dep.store.read() as conn:
            row = self._ticket(conn, ticket_id)
            alerts = [
                {"type": UNCHECKED_CALL_BACK if e.type == events.CALLED_BACK and
                 e.data.get("checked") is False else e.data.get("cause", e.type),
                 "at": iso(from_epoch(e.at))}
                for e in read_events(conn, self.dep.issuer_id, ticket_id=ticket_id)
                if e.type in (events.TICKET_FAILED, events.TAMPERED, events.CALLED_BACK)
            ]
        state = states.effective_state(row.state, row.expires_at, at)
        word_due = state == states.NUMBER_CONFIRMED or (state == states.CLAIMED and not row.dst)
        return TicketStatus(ticket_id=ticket_id, state=state,
                            check_word=WORDS[row.word_id] if word_due else None, alerts=alerts,
                            has_number=row.dst is not None,
                            expires_at=from_epoch(row.expires_at), agent_id=row.agent_id)


# Statements built once (building them costs more than running them).
_A, _R, _K = schema.agents, schema.reasons, schema.signing_keys
_REGISTRY_FACTS = union_all(
    select(literal_column("'agent'").label("kind"), _A.c.name.label("name"),
           _A.c.department.label("department"), _A.c.enabled.label("enabled"))
    .where(_A.c.issuer_id == bindparam("issuer"), _A.c.agent_id == bindparam("agent")),
    select(literal_column("'reason'"), _R.c.code, cast(null(), String), _R.c.enabled)
    .where(_R.c.issuer_id == bindparam("issuer"), _R.c.code == bindparam("reason")),
    select(literal_column("'key'"), _K.c.kid, cast(null(), String), true())
    .where(_K.c.issuer_id == bindparam("issuer"), _K.c.status == ACTIVE),
)
_INSERT_TICKET = insert(schema.tickets)
_TAKE_OVER_CODE = update(schema.live_codes).where(
    schema.live_codes.c.code_hash == bindparam("h"),
    schema.live_codes.c.expires_at <= bindparam("now"),
).values(ticket_id=bindparam("jti"), expires_at=bindparam("exp"))


def load_signing_key(dep: Deployment, conn: Connection, kid: str) -> SigningKey:
    """The private key of the active key ``kid`` (ADR 0011): CALLPROOF_SIGNING_KEY when it holds
    that key; else the database's copy, decrypted with CALLPROOF_KEY_PASSPHRASE — so a rotation
    on any host is used by every instance from its next ticket; else, for a data dir made before
    keys moved into the database, ``keys/<kid>.pem``, which is then copied into the database
    (inside ``conn``, the caller's write transaction) for the other instances."""
    env_pem = os.environ.get("CALLPROOF_SIGNING_KEY")
    if env_pem:
        key = SigningKey.from_pem(env_pem.encode("utf-8"), passphrase())
        if key.kid == kid:
            return key
    pem = conn.execute(_KEY_SECRET, {"issuer": dep.issuer_id, "kid": kid}).scalar()
    if pem is None:
        return import_key_file(dep, conn, kid, dep.now())
    key = SigningKey.from_pem(pem.encode("ascii"), passphrase())
    if key.kid != kid:
        raise ConfigError(f"the database holds another private key under the kid {kid}")
    return key


_KEY_SECRET = select(schema.signing_key_secrets.c.pem).where(
    schema.signing_key_secrets.c.issuer_id == bindparam("issuer"),
    schema.signing_key_secrets.c.kid == bindparam("kid"))
