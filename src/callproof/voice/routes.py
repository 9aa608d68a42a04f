"""The voice line's registry and records: where a verified customer is put back through to,
how many calls a calling number made this hour, and a webhook call's state between requests.

    >>> routes = Routes(deployment)   # config.toml: [voice] transfer_allowed lists the PBX
    >>> routes.set("a-017", transfer_target="sip:mei.lin@pbx.shop.example", queue="+886223456789")
    >>> routes.get("a-017").transfer_target
    'sip:mei.lin@pbx.shop.example'
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update

from callproof.admin import REGISTRY_LOCK
from callproof.deployment import Deployment
from callproof.errors import InputError, NotFound
from callproof.protocol import events, states
from callproof.protocol.canonical import parse_json_strict
from callproof.protocol.clock import to_epoch
from callproof.store import schema

#: A SIP URI (RFC 3261 ``sip:``/``sips:``, user part and host, no spaces or angle brackets) …
_SIP_URI = re.compile(r"sips?:[A-Za-z0-9._~%!$&'()*+,;=-]+@[A-Za-z0-9.-]+(:[0-9]{1,5})?"
                      r"(;[A-Za-z0-9._~%=-]+)*")
#: … or an E.164 number.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
#: How long a webhook call's state is kept after its last request (a call check takes minutes).
CALL_STATE_SECONDS = 3600


def check_target(value: str, what: str, allowed: tuple[str, ...] = ()) -> str:
    """A transfer target or queue as given: a ``sip:`` URI or an E.164 number that
    ``[voice] transfer_allowed`` lists (its SIP domain or a prefix of the number); InputError
    else. With the list empty, nothing can be set: a leaked API key must not be able to send
    verified customers anywhere the company did not list in its own config."""
    text = value.strip() if isinstance(value, str) else ""
    compact = text.replace(" ", "").replace("-", "") if text.startswith("+") else text
    if len(compact) > 255 or not (_SIP_URI.fullmatch(compact) or _E164.fullmatch(compact)):
        raise InputError(f"{what} must be a SIP URI (sip:name@host) or an E.164 number "
                         "(+886223456789)", reason="bad_target")
    if not allowed:
        raise InputError(
            f"{what} cannot be set: config.toml lists no allowed transfer targets; add "
            '[voice] transfer_allowed = ["sip:*@pbx.shop.example", "+8862"] (your PBX\'s SIP '
            "domains and your own numbers' prefixes)", reason="no_transfer_allowed")
    if not any(target_allowed(compact, entry) for entry in allowed):
        raise InputError(f"{what} is not in config.toml's [voice] transfer_allowed (the SIP "
                         "domains and number prefixes calls may be put through to)",
                         reason="target_not_allowed")
    return compact


def target_allowed(target: str, entry: str) -> bool:
    """Whether ``target`` (checked by :func:`check_target`'s shapes) is under one allowed
    ``entry``: ``sip:*@host`` (any user at exactly that host; any port unless the entry names
    one) or an E.164 prefix ``+8862``."""
    if entry.startswith("+"):
        return target.startswith("+") and target.startswith(entry)
    if not target.lower().startswith(("sip:", "sips:")) or "@" not in entry:
        return False
    scheme, _, hostport = entry.partition(":*@")
    t_scheme, _, rest = target.partition(":")
    if scheme.lower() == "sips" and t_scheme.lower() != "sips":
        return False  # an entry that asks for TLS admits only sips: targets
    t_hostport = rest.rsplit("@", 1)[1].split(";", 1)[0]
    t_host, _, t_port = t_hostport.partition(":")
    host, _, port = hostport.partition(":")
    return t_host.lower() == host.lower() and (not port or t_port == port)


@dataclass(frozen=True)
class Route:
    """Where one agent's verified customers are put back through to (None: nowhere)."""

    agent_id: str
    transfer_target: str | None
    queue: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"transfer_target": self.transfer_target, "queue": self.queue}


class Routes:
    """The agents' transfer targets and team queues (the agent registry's voice part)."""

    def __init__(self, deployment: Deployment) -> None:
        self.dep = deployment

    def get(self, agent_id: str) -> Route:
        t = schema.agent_routes
        with self.dep.store.read() as conn:
            row = conn.execute(select(t).where(t.c.issuer_id == self.dep.issuer_id,
                                               t.c.agent_id == agent_id)).first()
        if row is None:
            return Route(agent_id, None, None)
        return Route(agent_id, row.transfer_target, row.queue)

    def all(self) -> dict[str, Route]:
        t = schema.agent_routes
        with self.dep.store.read() as conn:
            rows = conn.execute(select(t).where(t.c.issuer_id == self.dep.issuer_id)).all()
        return {r.agent_id: Route(r.agent_id, r.transfer_target, r.queue) for r in rows}

    def set(self, agent_id: str, *, transfer_target: str | None = None,
            queue: str | None = None, now: datetime | None = None) -> Route:
        """Set an agent's transfer target and/or team queue (None: as it is; "": none).
        Raises :class:`NotFound` for an agent not in the registry, :class:`InputError` for a
        target that is neither a SIP URI nor an E.164 number (nothing changes then)."""
        at = self.dep.now(now)
        allowed = self.dep.config.voice.transfer_allowed
        target = None if transfer_target is None else (
            check_target(transfer_target, "the transfer target", allowed)
            if transfer_target.strip() else "")
        team = None if queue is None else (
            check_target(queue, "the queue", allowed) if queue.strip() else "")
        a, t = schema.agents, schema.agent_routes
        with self.dep.store.write(lock=REGISTRY_LOCK) as conn:
            known = conn.execute(select(a.c.agent_id).where(
                a.c.issuer_id == self.dep.issuer_id, a.c.agent_id == agent_id)).first()
            if known is None:
                raise NotFound(f"no agent {agent_id!r}")
            row = conn.execute(select(t).where(t.c.issuer_id == self.dep.issuer_id,
                                               t.c.agent_id == agent_id)).first()
            old = Route(agent_id, row.transfer_target if row else None, row.queue if row else None)
            new = Route(agent_id,
                        old.transfer_target if target is None else (target or None),
                        old.queue if team is None else (team or None))
            if new == old:
                return new
            values = {"transfer_target": new.transfer_target, "queue": new.queue,
                      "updated_at": to_epoch(at)}
            if row is None:
                self.dep.store.insert_if_absent(conn, t, {
                    "issuer_id": self.dep.issuer_id, "agent_id": agent_id, **values})
            else:
                conn.execute(update(t).where(t.c.issuer_id == self.dep.issuer_id,
                                             t.c.agent_id == agent_id).values(**values))
            # The registry's change event names the new target and queue (the company's own
            # lines, not a customer's number): the fraud desk sees it as an alert
            # (callproof.fraud, kind route_changed), so a route changed with a leaked key shows.
            self.dep.record(conn, events.AGENT_ROUTE_SET, at, agent_id=agent_id,
                            transfer_target=new.transfer_target, queue=new.queue)
        return new

    def agent_busy(self, agent_id: str, ticket_id: str, *, now: datetime | None = None) -> bool:
        """Whether the agent has moved on to another customer since this ticket: a later
        ticket of theirs is connected or being checked (spec/voice-line.md §4). A later ticket
        claimed on the voice line does not count: its customer called the line, not the agent
        (e.g. checked after the agent's call had ended), so the agent is not on it."""
        at = to_epoch(self.dep.now(now))
        t = schema.tickets
        with self.dep.store.read() as conn:
            issued = conn.execute(select(t.c.issued_at).where(t.c.ticket_id == ticket_id)) \
                .scalar()
            if issued is None:
                return False
            later = set(conn.execute(select(t.c.ticket_id).where(
                t.c.issuer_id == self.dep.issuer_id, t.c.agent_id == agent_id,
                t.c.ticket_id != ticket_id, t.c.issued_at >= issued, t.c.expires_at > at,
                t.c.state.in_((states.CONNECTED, states.CLAIMED, states.NUMBER_CONFIRMED,
                               states.VERIFIED))).limit(50)).scalars())
            if not later:
                return False
            return bool(later - _voice_claimed(conn, self.dep.issuer_id, later))

    def called_back(self, ticket_id: str, *, to: str, channel: str, checked: bool = True,
                    now: datetime | None = None) -> None:
        """Record that the customer of ``ticket_id`` is being put back through (the agent's
        console shows it): ``to`` is "agent" or "queue"; ``checked`` False for a caller the
        line could not check (a ticket without a number, put through to the team): the
        console then says the caller was not checked."""
        at = self.dep.now(now)
        with self.dep.store.write() as conn:
            self.dep.record(conn, events.CALLED_BACK, at, ticket_id=ticket_id, to=to,
                            channel=channel, checked=checked)


def _voice_claimed(conn: Connection, issuer: str, ticket_ids: set[str]) -> set[str]:
    """Which of these tickets were claimed on the voice line (``ticket.claimed`` with
    ``channel: voice``, logged or still queued)."""
    found: set[str] = set()
    for t in (schema.events, schema.event_queue):
        for tid, body in conn.execute(select(t.c.ticket_id, t.c.body).where(
                t.c.issuer_id == issuer, t.c.type == events.TICKET_CLAIMED,
                t.c.ticket_id.in_(sorted(ticket_ids)))):
            data = parse_json_strict(bytes(body)).get("data")
            if isinstance(data, dict) and data.get("channel") == "voice":
                found.add(tid)
    return found


def called_back_tickets(dep: Deployment, ticket_ids: list[str]) -> set[str]:
    """Which of these tickets' customers called back on the voice line (``ticket.called_back``
    logged or still queued): the agent's recent-calls list says so beside each."""
    if not ticket_ids:
        return set()
    found: set[str] = set()
    with dep.store.read() as conn:
        for t in (schema.events, schema.event_queue):
            found.update(conn.execute(select(t.c.ticket_id).where(
                t.c.issuer_id == dep.issuer_id, t.c.type == events.CALLED_BACK,
                t.c.ticket_id.in_(ticket_ids))).scalars())
    return found


def count_call(dep: Deployment, conn: Connection, number_key: str, limit: int, now: int) -> bool:
    """Count one call from a calling number (its keyed-hash key) this epoch hour; False when
    the number already made ``limit`` calls (nothing is counted then). Shares the report form's
    per-key hourly counter table, under keys of its own."""
    c, hour = schema.report_counts, now - now % 3600
    hashed = dep.hash_keys.client_hash("voice-calls:" + number_key)
    made = conn.execute(select(c.c.count).where(c.c.key_hash == hashed, c.c.hour == hour)
                        .with_for_update()).scalar()
    if made is not None and made >= limit:
        return False
    if made is not None or not dep.store.insert_if_absent(
            conn, c, {"key_hash": hashed, "hour": hour, "count": 1}):
        conn.execute(update(c).where(c.c.key_hash == hashed, c.c.hour == hour)
                     .values(count=c.c.count + 1))
    return True


class CallStates:
    """A webhook call's state between the platform's requests, by the keyed hash of its call
    id, shared by every instance through the database."""

    def __init__(self, deployment: Deployment) -> None:
        self.dep = deployment

    def _key(self, call_id: str) -> str:
        return self.dep.hash_keys.client_hash("voice-call-id:" + call_id)

    def load(self, call_id: str, *, now: datetime | None = None) -> dict[str, Any] | None:
        v = schema.voice_calls
        at = to_epoch(self.dep.now(now))
        with self.dep.store.read() as conn:
            row = conn.execute(select(v.c.state).where(v.c.call_hash == self._key(call_id),
                                                       v.c.expires_at > at)).first()
        return json.loads(row.state) if row else None

    def save(self, call_id: str, state: dict[str, Any], *, now: datetime | None = None) -> None:
        v = schema.voice_calls
        at = to_epoch(self.dep.now(now))
        key, body = self._key(call_id), json.dumps(state, sort_keys=True)
        with self.dep.store.write() as conn:
            if not self.dep.store.insert_if_absent(conn, v, {
                    "call_hash": key, "state": body, "expires_at": at + CALL_STATE_SECONDS}):
                conn.execute(update(v).where(v.c.call_hash == key).values(
                    state=body, expires_at=at + CALL_STATE_SECONDS))
            conn.execute(delete(v).where(v.c.expires_at <= at))
