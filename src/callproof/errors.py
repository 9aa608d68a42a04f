"""One error tree for everything callproof raises.

Every exception the library raises on purpose is a :class:`CallproofError`. Verification
failures carry an ``outcome`` string — the stable, documented name from ``spec/callproof-v1.md``
that the CLI prints and the API returns — and the facts an operator needs, never a secret.

    >>> try:
    ...     verify_ticket(token, keys)
    ... except TicketError as e:
    ...     print(e.outcome)          # "expired", "bad_signature", ...
"""

from __future__ import annotations


class CallproofError(Exception):
    """The root of every error callproof raises on purpose."""


class ConfigError(CallproofError):
    """The data dir, its config or an environment setting is missing or wrong."""


class StoreError(CallproofError):
    """The database could not be reached or refused an operation."""


class InputError(CallproofError):
    """Input from a person or an integrator was refused; ``reason`` names why."""

    def __init__(self, message: str, *, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


class NotFound(InputError):
    """An agent, reason, key, ticket or customer named by the caller does not exist."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="not_found")


# --- tickets (spec §5, "Verifying a ticket") -------------------------------------------------


class TicketError(CallproofError):
    """A ticket failed verification. ``outcome`` is the spec's name for the failed step."""

    outcome = "invalid"

    def __init__(self, message: str, *, kid: str | None = None, ticket_id: str | None = None):
        super().__init__(message)
        self.kid = kid
        self.ticket_id = ticket_id


class MalformedTicket(TicketError):
    """Not three base64url parts of JSON objects, or too large."""

    outcome = "malformed"


class TicketTooLarge(MalformedTicket):
    """Longer than the 4 KiB limit; refused before any parsing."""

    outcome = "too_large"


class BadAlgorithm(TicketError):
    """The header's ``alg`` is not exactly ``"Ed25519"``."""

    outcome = "bad_algorithm"


class BadType(TicketError):
    """The header's ``typ`` is not exactly ``"callproof+jwt"``."""

    outcome = "bad_type"


class BadHeader(TicketError):
    """The header has ``crit`` or any member besides ``alg``, ``kid`` and ``typ``."""

    outcome = "bad_header"


class UnknownKey(TicketError):
    """No key with the header's ``kid`` in the key set."""

    outcome = "unknown_key"


class RevokedKey(TicketError):
    """The key was revoked: it verifies no live ticket at all."""

    outcome = "revoked"


class RetiredKey(TicketError):
    """The ticket claims to be signed after its key was retired."""

    outcome = "retired_key"


class BadSignature(TicketError):
    """The Ed25519 signature does not verify."""

    outcome = "bad_signature"


class BadClaims(TicketError):
    """A required claim is missing, or a claim has the wrong type or shape."""

    outcome = "bad_claims"


class WrongIssuer(TicketError):
    """``iss`` is not the issuer the verifier expected."""

    outcome = "wrong_issuer"


class Expired(TicketError):
    """``exp`` is in the past by more than the allowed clock skew."""

    outcome = "expired"


class NotYetValid(TicketError):
    """``iat`` is in the future by more than the allowed clock skew."""

    outcome = "not_yet_valid"


class LifetimeTooLong(TicketError):
    """``exp - iat`` is over the protocol's maximum lifetime."""

    outcome = "lifetime_too_long"


# --- call codes ---------------------------------------------------------------------------------


class CodeError(InputError):
    """A typed call code was refused before any lookup (spec §4)."""


class CodeFormatError(CodeError):
    """The code holds characters other than digits and separators, or has the wrong length."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="format")


class CodeTypo(CodeError):
    """Nine digits whose Damm check digit does not match: a typo, not a failed lookup."""

    def __init__(self, message: str = "the check digit does not match: a digit was mistyped"
                 ) -> None:
        super().__init__(message, reason="typo")


# --- the check flow (spec §6) -------------------------------------------------------------------


class CheckFailed(CallproofError):
    """A step of the customer's check flow cannot confirm the call.

    ``outcome`` is one of the spec's names (``not_found``, ``expired``, ``closed``, ``revoked``,
    ``failed``, ``claimed_elsewhere``, ``wrong_answer``, ``number_denied``, ``too_many_tries``,
    ``rate_limited``, ``tampered``, ``wrong_step``). The customer sees one page for all of them; the
    outcome is for logs and the agent's screen.
    """

    def __init__(self, outcome: str, message: str, *, ticket_id: str | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.ticket_id = ticket_id


class TransitionRefused(InputError):
    """A dialer or agent action that the ticket's state does not allow (e.g. close a closed one)."""

    def __init__(self, message: str, *, state: str) -> None:
        super().__init__(message, reason="wrong_state")
        self.state = state


# --- the audit log (spec/audit-log.md) ----------------------------------------------------------


class LogError(StoreError):
    """The audit log refuses to append or to sign: its tree is not what it must be."""


class LogBehindCheckpoint(LogError):
    """The database's tree is smaller than the checkpoint kept outside it (a restored backup)."""


class LogForked(LogError):
    """The database's tree does not extend the last signed checkpoint (its root differs)."""


# --- enrolled proofs, API keys, sealing and the notice card --------------------------------------


class AuthError(CallproofError):
    """No key, an unknown or revoked key (``status`` 401), or a key without the scope (403)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class SealError(ConfigError):
    """The seal key is missing or malformed, or a sealed blob does not open under it."""


class PhraseRefused(InputError):
    """The phrase breaks a rule; ``reason`` names which (the message says how to fix it)."""


class EnrollmentError(InputError):
    """An enrolment step was refused. ``reason`` is one of ``token_unknown``, ``token_used``,
    ``token_expired``, ``not_enrolled``, ``wrong_code``, ``code_replayed``,
    ``too_many_failures``, ``forgotten``, ``bad_customer``."""


class RevealRefused(InputError):
    """A reveal was refused. ``reason`` is one of ``not_connected``, ``agent_cap``,
    ``customer_cap``, ``forgotten``, ``not_enrolled``, ``no_customer``, ``not_live``,
    ``not_your_ticket``."""


class NoticeError(CallproofError):
    """The notice cannot be rendered (unknown language or format, no font)."""


# --- the log's formats and its witnesses (RFC 6962, C2SP) ----------------------------------------
# ProofError and NoteError are also ValueErrors, so callers that caught ValueError keep working.


class ProofError(CallproofError, ValueError):
    """A Merkle proof, hash or tree size was refused; the message says exactly why."""


class NoteError(CallproofError, ValueError):
    """A signed note, key, checkpoint or cosignature was refused; the message says why."""


class WitnessError(CallproofError):
    """An add-checkpoint request refused with HTTP ``status``; ``size`` is set for a 409."""

    def __init__(self, status: int, message: str, *, size: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.size = size


class PushError(CallproofError):
    """A witness could not be reached or answered nonsense (never fatal to the log)."""
