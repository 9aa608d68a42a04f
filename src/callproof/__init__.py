"""callproof: a company that phones its customers proves who it is first.

The public surface integrators use::

    from callproof import Issuer, CheckFlow, verify_ticket

    issuer = Issuer.open("callproof-data")
    call = issuer.issue(agent_id="a-001", reason="payment_failed", phone="+886912345678")
    print(call.code_display)             # the agent reads it out: "482 917 360"

    claims = verify_ticket(call.ticket, jwks)   # raises a TicketError subclass on failure
"""

from __future__ import annotations

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

__version__ = "0.1.0"
#: The protocol version this library speaks (spec/callproof-v1.md).
SPEC_VERSION = "1"

__all__ = [
    "SPEC_VERSION", "WORDS", "Admin", "Agent", "AlertWebhook", "BadAlgorithm", "BadClaims",
    "BadHeader", "BadSignature", "BadType", "CallTicket", "CallproofError", "CheckFailed",
    "CheckFlow", "CheckStep", "CheckWord", "Clock", "CodeError", "CodeFormatError", "CodeReport",
    "CodeTypo", "Company", "Config", "ConfigError", "DataDir", "Deployment", "DeskUser",
    "DeskUsers", "EnrolledProofs", "Expired", "FixedClock", "FraudDesk", "InputError",
    "IssuedTicket", "Issuer", "KeySet", "LifetimeTooLong", "Limits", "MalformedTicket", "NotFound",
    "NotYetValid", "Reason", "RetiredKey", "RevokedKey", "SigningKey", "StoreError", "SystemClock",
    "TicketError", "TicketKey", "TicketStatus", "TicketTooLarge", "TransitionRefused",
    "UnknownKey", "WrongIssuer", "__version__", "display_code", "encode_ticket", "init_data_dir",
    "new_client_token", "normalise_code", "verify_ticket",
]
