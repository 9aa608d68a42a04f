"""The ticket-state replay: each ticket's logged events must be a walk of its state machine.

The auditor reads the story of every ticket from the log alone (callproof-v1.md §6): which event
may follow which is :data:`callproof.protocol.states.TRANSITIONS`, the table the issuer moves
tickets by; this module adds what the log must also show — a ``ticket.failed`` right after the
event that caused it, with that cause; ``ticket.connected`` at most once; the phone question only
for a ticket with a number (``dst``); nothing after expiry but ``ticket.closed``. On the voice line
(events with ``channel: "voice"``) ``ticket.verified`` follows ``ticket.number_confirmed`` with
no check word, and a ticket closed before anyone claimed it may be claimed there, once. Each step
that cannot happen is reported to the caller's sink with its line.

    >>> found = []
    >>> story = _Story(lambda line, message: found.append((line, message)))
    >>> story.issued("t_1", 1, dst=False, exp=2_000_000_000)
    >>> story.step("ticket.closed", 1_900_000_000, None, "t_1", 2)
    >>> story.step("ticket.claimed", 1_900_000_001, None, "t_1", 3)
    >>> found[0][0], str(found[0][1]).endswith("nothing follows ticket.closed")
    (3, True)

Used by :func:`callproof.auditor.bundle.verify_bundle`, in log order, after each line's own checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from callproof.auditor.findings import Finding
from callproof.protocol import events
from callproof.protocol import states as S

Sink = Callable[[int, Finding], None]
"""Reports a failure: ``sink(line, message)``."""


_TICKET_STEP = {  # event type -> the action of states.TRANSITIONS it is
    events.TICKET_CONNECTED: "connected",
    events.TICKET_CLAIMED: "claim",
    events.NUMBER_CONFIRMED: "number_yes",
    events.NUMBER_DENIED: "number_no",
    events.WORD_WRONG: "word_wrong",
    events.TICKET_VERIFIED: "word_right",
    events.CLAIMED_ELSEWHERE: "second_client",
    events.TICKET_FAILED: "fail",
    events.TICKET_CLOSED: "close",
    events.TICKET_REVOKED: "revoke",
}
_FAILS_NEXT = {"number_no": S.CAUSE_NUMBER_DENIED, "word_wrong": S.CAUSE_WRONG_WORD,
               "second_client": S.CAUSE_CLAIMED_ELSEWHERE}
#: Where each step may come, said when it comes elsewhere (``v.hint.*`` of the report's words).
_HINT = {action: Finding.of(f"hint.{key}") for action, key in {
    "connected": "connected", "claim": "claim", "number_yes": "number", "number_no": "number",
    "word_right": "word", "word_wrong": "word", "second_client": "second_client",
    "network_verified": "network_verified", "voice_claim": "voice_claim", "close": "close",
    "revoke": "revoke"}.items()}
_CAUSE_EVENT = {S.CAUSE_NUMBER_DENIED: events.NUMBER_DENIED,
                S.CAUSE_WRONG_WORD: events.WORD_WRONG,
                S.CAUSE_CLAIMED_ELSEWHERE: events.CLAIMED_ELSEWHERE}


class _Ticket:
    __slots__ = ("claimed", "connected", "dst", "exp", "line", "pending", "since", "state")

    def __init__(self, line: int, dst: bool | None, exp: int | None) -> None:
        self.state = S.ISSUED
        self.since = line  # the line of the event that put it in its state
        self.line = line  # its ticket.issued
        self.dst = dst  # None: unknown (an unreadable ticket, refused on its own line)
        self.exp = exp
        self.connected: int | None = None
        self.claimed: int | None = None  # the line of its ticket.claimed
        self.pending: tuple[str, int] | None = None  # a ticket.failed cause that must come next


class _Story:
    """Each ticket's events must be a walk of the state machine (callproof-v1.md §6,
    :data:`callproof.protocol.states.TRANSITIONS`), read from the log alone."""

    def __init__(self, fail: Sink) -> None:
        self.fail = fail
        self.tickets: dict[str, _Ticket] = {}

    def issued(self, ticket_id: str, line: int, dst: bool | None, exp: int | None) -> None:
        self.tickets.setdefault(ticket_id, _Ticket(line, dst, exp))

    def step(self, kind: str, at: Any, given: Any, ticket_id: str, line: int) -> None:
        action = _TICKET_STEP.get(kind)
        t = self.tickets.get(ticket_id)
        if action is None or t is None:
            return  # alerts and reveals change no state
        what = {"kind": kind, "ticket": ticket_id}
        if t.pending is not None and action != "fail":
            cause, at_line = t.pending
            self.fail(at_line, Finding.of("story.unfailed", cause_event=_CAUSE_EVENT[cause],
                                          ticket=ticket_id, cause=cause, next=line, kind=kind))
            t.pending = None
        state = t.state
        if state in S.LIVE and t.exp is not None and at >= t.exp:
            state = S.EXPIRED
        if given == "voice" and action == "word_right":
            action = "network_verified"  # the voice line: no check word (spec/voice-line.md)
        elif given == "voice" and action == "claim" and state == S.CLOSED:
            action = "voice_claim"  # the after-the-call check
        if action == "fail":
            if t.pending is None:
                self.fail(line, Finding.of("story.fail_unprompted", **what, cause=given,
                                           state=state, since=t.since))
            elif t.pending[0] != given:
                self.fail(line, Finding.of("story.wrong_cause", **what, cause=given,
                                           cause_event=_CAUSE_EVENT[t.pending[0]],
                                           at=t.pending[1], expected=t.pending[0]))
            t.pending = None
            t.state, t.since = S.FAILED, line
            return
        problem = self._refused(t, state, action, at)
        if problem is not None:
            self.fail(line, Finding.of("story.impossible", **what, state=state, since=t.since,
                                       why=problem))
            return
        if action in ("claim", "voice_claim"):
            t.claimed = line
        if action == "connected":
            t.connected = line
            new = S.TRANSITIONS.get((state, action), state)
        elif action == "close" and state in (S.FAILED, S.REVOKED):
            new = state  # the hang-up is recorded; the end stays what it was
        else:
            new = S.TRANSITIONS[(state, action)]
        if action in _FAILS_NEXT:
            t.pending = (_FAILS_NEXT[action], line)
        if new != t.state:
            t.state, t.since = new, line

    @staticmethod
    def _refused(t: _Ticket, state: str, action: str, at: int) -> Finding | None:
        """Why this step cannot happen now, or None."""
        if state == S.FAILED and action != "close":
            return Finding.of("why.after_failed")
        if state == S.REVOKED and action != "close":
            return Finding.of("why.after_revoked")
        if state == S.CLOSED and action == "voice_claim":
            if t.claimed is not None:
                return Finding.of("why.claimed_before", line=t.claimed, hint=_HINT[action])
            if t.exp is not None and at >= t.exp:
                return Finding.of("why.expired_then", exp=t.exp, at=at, hint=_HINT[action])
            return None
        if state == S.CLOSED:
            return Finding.of("why.after_closed")
        if state == S.EXPIRED and action != "close":
            return Finding.of("why.expired", exp=t.exp, at=at)
        if action == "connected":
            if t.connected is not None:
                return Finding.of("why.connected_twice", line=t.connected)
            return None  # at any live state (the reveal of enrolled proofs needs it)
        if action == "close" and state in (S.FAILED, S.REVOKED):
            return None
        if action in ("number_yes", "number_no") and t.dst is False:
            return Finding.of("why.no_number")
        if action in ("word_right", "word_wrong") and state == S.CLAIMED and t.dst is True:
            return Finding.of("why.number_first")
        if (state, action) not in S.TRANSITIONS:
            return _HINT[action]
        return None

    def finish(self) -> None:
        for ticket_id, t in self.tickets.items():
            if t.pending is not None:
                cause, line = t.pending
                self.fail(line, Finding.of("story.unfailed_end", cause_event=_CAUSE_EVENT[cause],
                                           ticket=ticket_id, cause=cause))
