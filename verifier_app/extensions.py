"""The app's extensions and its handle on the library services (shared by the blueprints)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from flask_limiter import Limiter
from flask_wtf.csrf import CSRFProtect

from callproof import Admin, CheckFlow, Deployment, EnrolledProofs, Issuer
from callproof.agent_auth import AgentPasswords
from callproof.apikeys import ApiKeys
from callproof.desk_users import DeskUsers
from callproof.fraud import FraudDesk
from callproof.scam_reports import Reports
from callproof.sign_ins import SignIns
from callproof.webhook import AlertWebhook

from . import security

csrf = CSRFProtect()
limiter = Limiter(key_func=security.client_key, default_limits=[],
                  headers_enabled=False, strategy="moving-window")


@dataclass
class Services:
    """The library services one app instance uses, over one opened deployment."""

    deployment: Deployment
    issuer: Issuer
    flow: CheckFlow
    admin: Admin
    api_keys: ApiKeys
    passwords: AgentPasswords
    reports: Reports
    enrolled: EnrolledProofs
    desk: FraudDesk
    desk_users: DeskUsers
    webhook: AlertWebhook
    sign_ins: SignIns


def services() -> Services:
    """The current app's library services."""
    found: Services = current_app.extensions["callproof"]
    return found


