"""Events: the types and bodies of the append-only record of what happens to tickets and keys.

Each event is written in the same transaction as the change it records (by
:mod:`callproof.store.events`). Its body is canonical
JSON (RFC 8785) — exactly the bytes that become a leaf of the audit log's Merkle tree — and its
index is contiguous per issuer. Bodies hold ids, handles and the four-digit hint; never a phone
number, customer ref, call code, client address or secret.

    >>> Event(type=TICKET_CLAIMED, issuer="shop.example", at=0).to_bytes()[:28]
    b'{"at":0,"data":{},"iss":"sho'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from callproof.protocol.canonical import canonical_json, parse_json_strict

#: The event schema's version, the ``v`` member of every body.
EVENT_VERSION = 1
#: 9999-12-31T23:59:59Z, the last second a datetime holds: the latest ``at`` an event may have.
MAX_EPOCH = 253_402_300_799

TICKET_ISSUED = "ticket.issued"
TICKET_CONNECTED = "ticket.connected"
TICKET_CLAIMED = "ticket.claimed"
NUMBER_CONFIRMED = "ticket.number_confirmed"
NUMBER_DENIED = "ticket.number_denied"
WORD_WRONG = "ticket.word_wrong"
TICKET_VERIFIED = "ticket.verified"
TICKET_FAILED = "ticket.failed"
TICKET_CLOSED = "ticket.closed"
TICKET_REVOKED = "ticket.revoked"
CLAIMED_ELSEWHERE = "alert.claimed_elsewhere"
TAMPERED = "alert.tampered"
BUDGET_TRIPPED = "alert.lookup_budget_tripped"
LOOKUPS_FAILED = "lookups.failed"
KEY_CREATED = "key.created"
KEY_RETIRED = "key.retired"
KEY_REVOKED = "key.revoked"
AGENT_ADDED = "agent.added"
AGENT_DISABLED = "agent.disabled"
AGENT_ENABLED = "agent.enabled"
AGENT_CHANGED = "agent.changed"
REASON_ADDED = "reason.added"
REASON_DISABLED = "reason.disabled"
REASON_ENABLED = "reason.enabled"
CUSTOMER_FORGOTTEN = "customer.forgotten"
REPORT_FILED = "report.filed"
APIKEY_CREATED = "apikey.created"
APIKEY_REVOKED = "apikey.revoked"
AGENT_PASSWORD_SET = "agent.password_set"  # noqa: S105 - an event name, not a password
# Enrolled proofs (spec/enrolled-proofs.md): handles, kinds and ids only, never a secret,
# an app code, a phrase, a token or a customer ref.
ENROLL_TOKEN_CREATED = "enrol.token_created"  # noqa: S105 - an event name, not a token
ENROLL_TOKEN_USED = "enrol.token_used"  # noqa: S105 - an event name, not a token
TOTP_STARTED = "enrol.totp_started"
TOTP_CONFIRMED = "enrol.totp_confirmed"
TOTP_CONFIRM_FAILED = "enrol.totp_confirm_failed"
PHRASE_SET = "enrol.phrase_set"
PROOF_REMOVED = "enrol.removed"
REVEAL_APP_CODE = "reveal.app_code"
REVEAL_PHRASE = "reveal.phrase"
REVEAL_UNCONNECTED = "alert.reveal_unconnected"
REVEAL_CAPPED = "alert.reveal_capped"
# The fraud desk (spec/fraud-desk.md): its users' ids, never a password or a name; the webhook
# secret's creation or rotation, never the secret.
DESK_USER_ADDED = "desk.user_added"
DESK_USER_DISABLED = "desk.user_disabled"
DESK_USER_ENABLED = "desk.user_enabled"
DESK_PASSWORD_SET = "desk.password_set"  # noqa: S105 - an event name, not a password
WEBHOOK_SECRET_SET = "desk.webhook_secret_set"  # noqa: S105 - an event name, not a secret
# Staff sign-ins (the console's agents, the desk's users): kind and id, never a password.
SIGNED_IN = "staff.signed_in"
SIGN_IN_FAILED = "staff.sign_in_failed"
SIGNED_OUT = "staff.signed_out"
# The voice line (spec/voice-line.md): a verified customer asked to be put back through; the
# data names the channel and where the call went ("agent" or "queue"), never a number.
CALLED_BACK = "ticket.called_back"
AGENT_ROUTE_SET = "agent.route_set"  # an agent's transfer target / queue set (whether, not what)
# The desk's work on an alert (spec/fraud-desk.md §1): the alert's index and desk user ids only.
ALERT_ACKNOWLEDGED = "desk.alert_acknowledged"
ALERT_ASSIGNED = "desk.alert_assigned"

#: What a scam caller asked for, as the report form lists it: the values of a ``report.filed``
#: event's ``scripts`` (spec/fraud-desk.md, the scam scripts).
REPORT_SCRIPTS = ("refund", "verification_code", "card_or_bank", "screen_sharing",
                  "transfer_or_loan", "install_app", "open_link")

EVENT_TYPES = frozenset({
    TICKET_ISSUED, TICKET_CONNECTED, TICKET_CLAIMED, NUMBER_CONFIRMED, NUMBER_DENIED, WORD_WRONG,
    TICKET_VERIFIED, TICKET_FAILED, TICKET_CLOSED, TICKET_REVOKED, CLAIMED_ELSEWHERE, TAMPERED,
    BUDGET_TRIPPED, LOOKUPS_FAILED, KEY_CREATED, KEY_RETIRED, KEY_REVOKED, AGENT_ADDED,
    AGENT_DISABLED, AGENT_ENABLED, REASON_ADDED, CUSTOMER_FORGOTTEN, REPORT_FILED,
    APIKEY_CREATED, APIKEY_REVOKED, AGENT_PASSWORD_SET,
    ENROLL_TOKEN_CREATED, ENROLL_TOKEN_USED, TOTP_STARTED, TOTP_CONFIRMED, TOTP_CONFIRM_FAILED,
    PHRASE_SET, PROOF_REMOVED, REVEAL_APP_CODE, REVEAL_PHRASE, REVEAL_UNCONNECTED, REVEAL_CAPPED,
    DESK_USER_ADDED, DESK_USER_DISABLED, DESK_USER_ENABLED, DESK_PASSWORD_SET, WEBHOOK_SECRET_SET,
    SIGNED_IN, SIGN_IN_FAILED, SIGNED_OUT, REASON_DISABLED, REASON_ENABLED, AGENT_CHANGED,
    ALERT_ACKNOWLEDGED, ALERT_ASSIGNED,
    CALLED_BACK, AGENT_ROUTE_SET,  # the voice line
})


@dataclass(frozen=True)
class Event:
    """One event as it is logged: ``{"v":1,"type":…,"iss":…,"at":…,"data":{…}}``."""

    type: str
    issuer: str
    at: int
    data: dict[str, Any] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return canonical_json({"v": EVENT_VERSION, "type": self.type, "iss": self.issuer,
                               "at": self.at, "data": self.data})

    @classmethod
    def from_bytes(cls, body: bytes) -> Event:
        """Parse a logged body. Raises ``ValueError`` when it is not a v1 event."""
        return cls.from_parsed(parse_json_strict(body))

    @classmethod
    def from_parsed(cls, raw: Any) -> Event:
        """The event of an already parsed body. Raises ``ValueError`` when it is not a v1 event:
        exactly v, type, iss, at and data; a known type; text for iss; whole epoch seconds a
        datetime can hold for at (a string or 1e300 there broke the audit's arithmetic: fuzz/)."""
        if not isinstance(raw, dict) or raw.get("v") != EVENT_VERSION or \
                set(raw) != {"v", "type", "iss", "at", "data"}:
            raise ValueError("not a callproof v1 event")
        if not isinstance(raw["type"], str) or raw["type"] not in EVENT_TYPES or \
                not isinstance(raw["data"], dict):
            raise ValueError(f"unknown event type {str(raw['type'])[:64]!r}")
        if not isinstance(raw["iss"], str) or not (type(raw["at"]) is int and
                                                    0 <= raw["at"] <= MAX_EPOCH):
            raise ValueError("its iss is not text or its at is not epoch seconds")
        return cls(type=raw["type"], issuer=raw["iss"], at=raw["at"], data=raw["data"])


def by_api_key(api_key: str | None) -> dict[str, str]:
    """The event data naming the API key that asked (its id; nothing when none did)."""
    return {"api_key": api_key} if api_key is not None else {}
