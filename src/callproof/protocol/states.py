"""A ticket's states and the transitions between them (spec/callproof-v1.md §6).

    issued ─connected─▶ connected ─┐
       └──────────────────────────┴─claim─▶ claimed ─yes─▶ number_confirmed ─right word─▶ verified
                                              │  (no number: straight to the word)
    "No", a wrong word or a second device ─▶ failed      the dialer's hang-up ─▶ closed
    the issuer revokes ─▶ revoked                         past ``exp`` ─▶ expired (derived)

    The voice line (spec/voice-line.md): claimed ─the calling number's hash matches─▶
    number_confirmed ─network_verified─▶ verified, with no check word; and a ticket closed
    before anyone claimed it may be claimed there until ``exp`` (closed ─voice_claim─▶ claimed).

``expired`` is never written: it is what a live state reads as once ``exp`` has passed.
"""

from __future__ import annotations

ISSUED = "issued"
CONNECTED = "connected"
CLAIMED = "claimed"
NUMBER_CONFIRMED = "number_confirmed"
VERIFIED = "verified"
FAILED = "failed"
CLOSED = "closed"
EXPIRED = "expired"
REVOKED = "revoked"

STATES = (ISSUED, CONNECTED, CLAIMED, NUMBER_CONFIRMED, VERIFIED, FAILED, CLOSED, EXPIRED,
          REVOKED)
#: States in which the ticket can still move on; they read as ``expired`` after ``exp``.
LIVE = frozenset({ISSUED, CONNECTED, CLAIMED, NUMBER_CONFIRMED, VERIFIED})
#: Not yet claimed by any client.
UNCLAIMED = frozenset({ISSUED, CONNECTED})

#: Why a ticket failed (the ``cause`` of ``ticket.failed``).
CAUSE_NUMBER_DENIED = "number_denied"
CAUSE_WRONG_WORD = "wrong_word"
CAUSE_CLAIMED_ELSEWHERE = "claimed_elsewhere"

#: Every transition the library makes, as (from, action) → to. Tests walk this table.
TRANSITIONS: dict[tuple[str, str], str] = {
    (ISSUED, "connected"): CONNECTED,
    (ISSUED, "claim"): CLAIMED,
    (CONNECTED, "claim"): CLAIMED,
    (CLAIMED, "number_yes"): NUMBER_CONFIRMED,
    (CLAIMED, "number_no"): FAILED,
    (CLAIMED, "word_right"): VERIFIED,  # only for a ticket without a number
    (CLAIMED, "word_wrong"): FAILED,  # only for a ticket without a number
    (NUMBER_CONFIRMED, "word_right"): VERIFIED,
    (NUMBER_CONFIRMED, "word_wrong"): FAILED,
    # The voice line only: the network answered the phone question, so no check word is asked
    # (the customer dialled the official number; there is no live call to bind a word to).
    (NUMBER_CONFIRMED, "network_verified"): VERIFIED,
    # The voice line only, the after-the-call check: a ticket the dialer closed before any
    # client claimed it (never the page: the check word needs the live call).
    (CLOSED, "voice_claim"): CLAIMED,
    **{(s, "second_client"): FAILED for s in (CLAIMED, NUMBER_CONFIRMED, VERIFIED)},
    **{(s, "close"): CLOSED for s in (*LIVE, EXPIRED)},
    **{(s, "revoke"): REVOKED for s in LIVE},
}


def effective_state(stored: str, expires_at: int, now: int) -> str:
    """The state a ticket is in at ``now`` (epoch seconds): live states expire at ``exp``."""
    if stored in LIVE and now >= expires_at:
        return EXPIRED
    return stored
