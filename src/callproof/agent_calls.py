"""An agent's calls as the console shows them: every ticket naming the agent, however it was
issued (the console, the issuer API, the CLI, the demo), and the facts of one call that the
call page needs beyond the ticket's state.

    >>> calls = recent_calls(dep, "a-001", now=dep.now())   # newest first, the last 24 h
    >>> calls[0].reason, calls[0].state
    ('order_delivery', 'claimed')
    >>> call_facts(dep, calls[0].ticket_id).claim_lang        # the customer's page language
    'zh-Hant'

Read-only; nothing here names a customer, a number or a code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select

from callproof.deployment import Deployment
from callproof.issuer import TicketStatus
from callproof.proofs import PHRASE, TOTP
from callproof.protocol import states
from callproof.protocol.clock import from_epoch, to_epoch
from callproof.protocol.jws import peek_unverified_claims
from callproof.protocol.languages import LANGUAGES
from callproof.store import schema

#: How far back "Your recent calls" looks, and how many calls it lists.
RECENT_SECONDS = 24 * 3600
RECENT_LIMIT = 10


@dataclass(frozen=True)
class AgentCall:
    """One call in the agent's list."""

    ticket_id: str
    reason: str  # the reason code
    state: str  # the effective state now (an unclosed ticket past its lifetime is expired)
    issued_at: datetime


@dataclass(frozen=True)
class CallFacts:
    """What the call page shows besides the state: the check page's language at the claim
    (None before the claim), whether the call offers an enrolled proof to reveal, and whether
    the dialer reported it connected (a reveal needs that)."""

    claim_lang: str | None
    offers_reveal: bool
    connected: bool
    customer: bool  # the ticket names a customer (the company's app shows the call)
    reason: str  # the reason code


def recent_calls(dep: Deployment, agent_id: str, *, now: datetime | None = None,
                 limit: int = RECENT_LIMIT) -> list[AgentCall]:
    """The agent's calls of the last :data:`RECENT_SECONDS`, newest first."""
    at = to_epoch(dep.now(now))
    with dep.store.read() as conn:
        rows = conn.execute(_RECENT, {"issuer": dep.issuer_id, "agent": agent_id,
                                      "since": at - RECENT_SECONDS, "limit": limit}).all()
    return [AgentCall(r.ticket_id, r.reason, states.effective_state(r.state, r.expires_at, at),
                      from_epoch(r.issued_at)) for r in rows]


def call_facts(dep: Deployment, ticket_id: str) -> CallFacts | None:
    """The facts of one call of this issuer (None for an unknown ticket)."""
    with dep.store.read() as conn:
        row = conn.execute(_FACTS, {"issuer": dep.issuer_id, "ticket": ticket_id}).first()
    if row is None:
        return None
    # The row is this deployment's own, verified when it was issued and at the claim: reading
    # its offered methods (``mth``) unverified only decides whether a reveal button shows.
    claims = peek_unverified_claims(row.token) or {}
    found = claims.get("mth")
    methods: list[object] = found if isinstance(found, list) else []
    lang = row.claim_lang if row.claim_lang in LANGUAGES else None
    return CallFacts(claim_lang=lang,
                     offers_reveal=row.handle is not None and any(
                         m in (TOTP, PHRASE) for m in methods),
                     connected=row.connected_at is not None, customer=row.handle is not None,
                     reason=row.reason)


_T = schema.tickets
_RECENT = (select(_T.c.ticket_id, _T.c.reason, _T.c.state, _T.c.issued_at, _T.c.expires_at)
           .where(_T.c.issuer_id == bindparam("issuer"), _T.c.agent_id == bindparam("agent"),
                  _T.c.issued_at > bindparam("since"))
           .order_by(_T.c.issued_at.desc(), _T.c.ticket_id).limit(bindparam("limit")))
_FACTS = select(_T.c.token, _T.c.handle, _T.c.connected_at, _T.c.claim_lang, _T.c.reason).where(
    _T.c.issuer_id == bindparam("issuer"), _T.c.ticket_id == bindparam("ticket"))


def status_json(dep: Deployment, status: TicketStatus, lang: str = "en") -> dict[str, Any]:
    """The agent's view of a call as JSON (:meth:`TicketStatus.to_json` in ``lang``, the
    agent's). Once the customer has typed the code, the check word also carries their page's
    language and the word as they see it (``customer_lang``, ``customer_text``): what the
    agent listens for. The CLI's ``tickets status`` and the API's ticket status both say this."""
    body = status.to_json(lang)
    word = status.check_word
    facts = call_facts(dep, status.ticket_id) if word is not None else None
    if word is not None and facts is not None and facts.claim_lang is not None:
        body["check_word"].update(customer_lang=facts.claim_lang,
                                  customer_text=word.text(facts.claim_lang))
    return body

