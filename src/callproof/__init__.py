"""callproof: a company that phones its customers proves who it is first.

The public surface integrators use::

    from callproof import Issuer, CheckFlow, verify_ticket

    issuer = Issuer.open("callproof-data")
    call = issuer.issue(agent_id="a-001", reason="payment_failed", phone="+886912345678")
    print(call.code_display)             # the agent reads it out: "482 917 360"

    claims = verify_ticket(call.ticket, jwks)   # raises a TicketError subclass on failure

Importing the package does no work: each public name is imported from its module the first
time it is used (PEP 562), so ``import callproof`` loads neither SQLAlchemy nor Flask, and a
tool that needs only ``callproof.protocol`` or ``callproof.tlog`` pays for nothing else.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
#: The protocol version this library speaks (spec/callproof-v1.md).
SPEC_VERSION = "1"

# Every public name, and the module that defines it.
_WHERE: dict[str, str] = {
    **dict.fromkeys(("Admin", "Agent", "Reason"), "callproof.admin"),
    "init_data_dir": "callproof.bootstrap",
    **dict.fromkeys(("Clock", "FixedClock", "SystemClock"), "callproof.protocol.clock"),
    **dict.fromkeys(("display_code", "normalise_code"), "callproof.protocol.codes"),
    **dict.fromkeys(("Company", "Config", "DataDir", "Limits"), "callproof.config"),
    "Deployment": "callproof.deployment",
    **dict.fromkeys(("DeskUser", "DeskUsers"), "callproof.desk_users"),
    "EnrolledProofs": "callproof.enrollment",
    **dict.fromkeys((
        "BadAlgorithm", "BadClaims", "BadHeader", "BadSignature", "BadType", "CallproofError",
        "CheckFailed", "CodeError", "CodeFormatError", "CodeTypo", "ConfigError", "Expired",
        "InputError", "LifetimeTooLong", "MalformedTicket", "NotFound", "NotYetValid",
        "RetiredKey", "RevokedKey", "StoreError", "TicketError", "TicketTooLarge",
        "TransitionRefused", "UnknownKey", "WrongIssuer"), "callproof.errors"),
    "FraudDesk": "callproof.fraud",
    **dict.fromkeys(("IssuedTicket", "Issuer", "TicketStatus"), "callproof.issuer"),
    **dict.fromkeys(("KeySet", "SigningKey", "TicketKey"), "callproof.protocol.keys"),
    **dict.fromkeys(("CallTicket", "encode_ticket", "verify_ticket"), "callproof.protocol.ticket"),
    **dict.fromkeys(("CheckFlow", "CheckStep", "CodeReport", "new_client_token"),
                    "callproof.checkflow"),
    "AlertWebhook": "callproof.webhook",
    **dict.fromkeys(("WORDS", "CheckWord"), "callproof.protocol.words"),
}

__all__ = [
    "Admin", "Agent", "AlertWebhook", "BadAlgorithm", "BadClaims", "BadHeader", "BadSignature",
    "BadType", "CallTicket", "CallproofError", "CheckFailed", "CheckFlow", "CheckStep",
    "CheckWord", "Clock", "CodeError", "CodeFormatError", "CodeReport", "CodeTypo", "Company",
    "Config", "ConfigError", "DataDir", "Deployment", "DeskUser", "DeskUsers", "EnrolledProofs",
    "Expired", "FixedClock", "FraudDesk", "InputError", "IssuedTicket", "Issuer", "KeySet",
    "LifetimeTooLong", "Limits", "MalformedTicket", "NotFound", "NotYetValid", "Reason",
    "RetiredKey", "RevokedKey", "SPEC_VERSION", "SigningKey", "StoreError", "SystemClock",
    "TicketError", "TicketKey", "TicketStatus", "TicketTooLarge", "TransitionRefused",
    "UnknownKey", "WORDS", "WrongIssuer", "__version__", "display_code", "encode_ticket",
    "init_data_dir", "new_client_token", "normalise_code", "verify_ticket",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use, and keep the name here after that."""
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module 'callproof' has no attribute {name!r}") from None
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


if TYPE_CHECKING:  # what the names are, for type checkers and readers; nothing runs here
    from callproof.admin import Admin, Agent, Reason
    from callproof.bootstrap import init_data_dir
    from callproof.checkflow import CheckFlow, CheckStep, CodeReport, new_client_token
    from callproof.config import Company, Config, DataDir, Limits
    from callproof.deployment import Deployment
    from callproof.desk_users import DeskUser, DeskUsers
    from callproof.enrollment import EnrolledProofs
    from callproof.errors import (
        BadAlgorithm,
        BadClaims,
        BadHeader,
        BadSignature,
        BadType,
        CallproofError,
        CheckFailed,
        CodeError,
        CodeFormatError,
        CodeTypo,
        ConfigError,
        Expired,
        InputError,
        LifetimeTooLong,
        MalformedTicket,
        NotFound,
        NotYetValid,
        RetiredKey,
        RevokedKey,
        StoreError,
        TicketError,
        TicketTooLarge,
        TransitionRefused,
        UnknownKey,
        WrongIssuer,
    )
    from callproof.fraud import FraudDesk
    from callproof.issuer import IssuedTicket, Issuer, TicketStatus
    from callproof.protocol.clock import Clock, FixedClock, SystemClock
    from callproof.protocol.codes import display_code, normalise_code
    from callproof.protocol.keys import KeySet, SigningKey, TicketKey
    from callproof.protocol.ticket import CallTicket, encode_ticket, verify_ticket
    from callproof.protocol.words import WORDS, CheckWord
    from callproof.webhook import AlertWebhook
