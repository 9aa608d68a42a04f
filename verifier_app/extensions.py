"""The app's extensions and its handle on the library services (shared by the blueprints)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask, Response, current_app
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

log = logging.getLogger("callproof.web")

csrf = CSRFProtect()
#: The API's limits (per key, per agent). Keys are key ids, agent ids, or a keyed hash of the
#: client (security.limit_key): never a client address. When the storage (Redis) cannot be
#: reached, each process counts in its own memory instead ("degraded (local limits)": the same
#: numbers per process, no 500s), says so once in the log and in /healthz, and goes back to the
#: storage once it answers again.
limiter = Limiter(key_func=security.limit_key, default_limits=[],
                  headers_enabled=False, strategy="moving-window",
                  in_memory_fallback_enabled=True, swallow_errors=True)
#: What /healthz says about the limits when their storage cannot be reached.
LIMITER_DEGRADED = "degraded (local limits)"
_SAID = "callproof.limiter_degraded"  # app.extensions: what this app's log said last


def init_limiter(app: Flask) -> None:
    """Set up the limiter: a Redis storage gets short timeouts (a vanished Redis costs a request
    at most a second, once), and the switch to local limits and back is logged once each."""
    if str(app.config.get("RATELIMIT_STORAGE_URI", "")).startswith(("redis", "rediss")):
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS",
                              {"socket_connect_timeout": 1, "socket_timeout": 1})
    limiter.init_app(app)
    # The limiter is one object per process; a new app brings a new storage, so it starts as
    # "answering" (Flask-Limiter only clears the flag in its constructor: an app made after
    # another app's storage died would otherwise start degraded).
    limiter._storage_dead = False
    app.extensions[_SAID] = False
    app.after_request(_note_limiter_state)


def limiter_degraded() -> bool:
    """Whether the limits are counted in this process's memory because their storage is gone."""
    return bool(getattr(limiter, "_storage_dead", False))


def _note_limiter_state(response: Response) -> Response:
    dead = limiter_degraded()
    if dead != current_app.extensions.get(_SAID, False):
        current_app.extensions[_SAID] = dead
        if dead:
            log.error("the rate-limit storage cannot be reached: limits are counted per process "
                      "until it answers again (/healthz says \"limiter\": \"%s\")",
                      LIMITER_DEGRADED)
        else:
            log.warning("the rate-limit storage answers again: limits are shared again")
    return response


def limiter_health() -> dict[str, str]:
    """What /healthz adds about the limiter: nothing when its storage answers."""
    if limiter_degraded():
        return {"limiter": LIMITER_DEGRADED}
    try:
        healthy = limiter.storage.check()
    except Exception:  # noqa: BLE001 - any storage failure means the same: not shared now
        healthy = False
    return {} if healthy else {"limiter": LIMITER_DEGRADED}


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


