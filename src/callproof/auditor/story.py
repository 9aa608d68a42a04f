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
    >>> found[0][0], found[0][1].endswith("nothing follows ticket.closed")
    (3, True)

Used by :func:`callproof.auditor.bundle.verify_bundle`, in log order, after each line's own checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from callproof.protocol import events
from callproof.protocol import states as S

Sink = Callable[[int, str], None]
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
_HINT = {
    "connected": "the pick-up is reported once, while the ticket is live",
    "claim": "a ticket is claimed once, by one device, while it is issued or connected",
    "number_yes": "the phone question comes right after ticket.claimed, for a ticket with a "
                  "number (dst)",
    "number_no": "the phone question comes right after ticket.claimed, for a ticket with a "
                 "number (dst)",
    "word_right": "the check word comes after ticket.claimed and, for a ticket with a number "
                  "(dst), after ticket.number_confirmed",
    "word_wrong": "the check word comes after ticket.claimed and, for a ticket with a number "
                  "(dst), after ticket.number_confirmed",
    "second_client": "a second device can only meet a claimed ticket",
    "network_verified": "on the voice line ticket.verified comes right after "
                        "ticket.number_confirmed",
    "voice_claim": "only the voice line claims a closed ticket, and only one nobody had "
                   "claimed, before its exp",
    "close": "a closed ticket is not closed again",
    "revoke": "only a live ticket is revoked",
}
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
        what = f"{kind} of ticket {ticket_id}"
        if t.pending is not None and action != "fail":
            cause, at_line = t.pending
            self.fail(at_line, f"{_CAUSE_EVENT[cause]} of ticket {ticket_id} is not followed by "
                               f"its ticket.failed (cause {cause}): line {line} is {kind}")
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
                self.fail(line, f"{what} (cause {given}) is impossible: a ticket fails only "
                                "right after ticket.number_denied, ticket.word_wrong or "
                                f"alert.claimed_elsewhere (the ticket is {state} since line "
                                f"{t.since})")
            elif t.pending[0] != given:
                self.fail(line, f"{what} gives the cause {given}, but it follows "
                                f"{_CAUSE_EVENT[t.pending[0]]} (line {t.pending[1]}): the cause "
                                f"is {t.pending[0]}")
            t.pending = None
            t.state, t.since = S.FAILED, line
            return
        problem = self._refused(t, state, action, at)
        if problem is not None:
            self.fail(line, f"{what} is impossible: the ticket is {state} since line {t.since}; "
                            + problem)
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
    def _refused(t: _Ticket, state: str, action: str, at: int) -> str | None:
        """Why this step cannot happen now, or None."""
        if state == S.FAILED and action != "close":
            return "nothing but ticket.closed follows ticket.failed"
        if state == S.REVOKED and action != "close":
            return "nothing but ticket.closed follows ticket.revoked"
        if state == S.CLOSED and action == "voice_claim":
            if t.claimed is not None:
                return f"it was claimed on line {t.claimed}; {_HINT[action]}"
            if t.exp is not None and at >= t.exp:
                return f"it expired at {t.exp} (logged at {at}); {_HINT[action]}"
            return None
        if state == S.CLOSED:
            return "nothing follows ticket.closed"
        if state == S.EXPIRED and action != "close":
            return f"it expired at {t.exp} (logged at {at}); only ticket.closed follows expiry"
        if action == "connected":
            if t.connected is not None:
                return f"the pick-up was already reported on line {t.connected}; " \
                       "ticket.connected comes at most once"
            return None  # at any live state (the reveal of enrolled proofs needs it)
        if action == "close" and state in (S.FAILED, S.REVOKED):
            return None
        if action in ("number_yes", "number_no") and t.dst is False:
            return "the ticket has no number (dst), so there is no phone question"
        if action in ("word_right", "word_wrong") and state == S.CLAIMED and t.dst is True:
            return "the ticket has a number (dst): ticket.number_confirmed must come before " \
                   "the check word"
        if (state, action) not in S.TRANSITIONS:
            return _HINT[action]
        return None

    def finish(self) -> None:
        for ticket_id, t in self.tickets.items():
            if t.pending is not None:
                cause, line = t.pending
                self.fail(line, f"{_CAUSE_EVENT[cause]} of ticket {ticket_id} is not followed by "
                                f"its ticket.failed (cause {cause})")
