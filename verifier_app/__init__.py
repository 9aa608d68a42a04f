"""The reference verifier: the customer's check page, the issuer API and the agent console.

A thin Flask shell over the ``callproof`` library: forms, templates, HTTP and languages. All the
protocol lives in the library.

    $ flask --app verifier_app run            # CALLPROOF_DATA_DIR picks the data dir
    $ callproof serve --workers 2              # the same app under gunicorn

``create_app(test_config)`` reads, besides ``test_config``: ``CALLPROOF_DATA_DIR``,
``CALLPROOF_TRUSTED_PROXIES`` (how many proxies in front set X-Forwarded-For; default 0: the
socket's address is the client's), ``CALLPROOF_RATELIMIT_STORAGE`` (``memory://`` by default,
``redis://host:6379`` for several instances) and ``CALLPROOF_LOOKUP_LIMIT`` (failed lookups per
client, default ``30 per 15 minutes``), ``CALLPROOF_HTTPS=1`` (served over HTTPS: Secure
session cookie) and ``CALLPROOF_ALERT_PUSH_SECONDS`` (how often the fraud desk's alerts are pushed
to the configured webhook, default 5).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response
from flask_babel import Babel
from werkzeug.middleware.proxy_fix import ProxyFix

from callproof import Admin, CallproofError, CheckFlow, Deployment, EnrolledProofs, Issuer
from callproof.agent_auth import AgentPasswords
from callproof.apikeys import ApiKeys
from callproof.desk_users import DeskUsers
from callproof.fraud import FraudDesk
from callproof.scam_reports import Reports
from callproof.webhook import AlertWebhook

from . import api, console, enroll, fraud, i18n, public, security, wellknown
from .extensions import Services, csrf, limiter, services


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app. Raises ConfigError / StoreError when the data dir or database is unusable."""
    app = Flask(__name__)
    app.config.from_mapping(
        DATA_DIR=os.environ.get("CALLPROOF_DATA_DIR"),
        TRUSTED_PROXIES=int(os.environ.get("CALLPROOF_TRUSTED_PROXIES", "0")),
        RATELIMIT_STORAGE_URI=os.environ.get("CALLPROOF_RATELIMIT_STORAGE", "memory://"),
        LOOKUP_LIMIT=os.environ.get("CALLPROOF_LOOKUP_LIMIT", "30 per 15 minutes"),
        API_KEY_LIMIT=os.environ.get("CALLPROOF_API_KEY_LIMIT", "600 per minute"),
        AGENT_ISSUE_LIMIT=os.environ.get("CALLPROOF_AGENT_ISSUE_LIMIT", "30 per minute"),
        MAX_CONTENT_LENGTH=16 * 1024,  # every form and API body here is far smaller
        SESSION_COOKIE_HTTPONLY=True,
        # Behind HTTPS (as any real deployment is) the session cookie is Secure too.
        SESSION_COOKIE_SECURE=os.environ.get("CALLPROOF_HTTPS") == "1",
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_NAME="cp_session",
        WTF_CSRF_TIME_LIMIT=3600,
        WTF_CSRF_SSL_STRICT=True,
        BABEL_TRANSLATION_DIRECTORIES="translations",
        BABEL_DEFAULT_LOCALE="en",
        JSON_SORT_KEYS=False,
        HOUSEKEEPING_SECONDS=30,
        ALERT_PUSH_SECONDS=float(os.environ.get("CALLPROOF_ALERT_PUSH_SECONDS", "5")),
    )
    if test_config:
        app.config.update(test_config)

    deployment = Deployment.open(app.config["DATA_DIR"])
    app.extensions["callproof"] = Services(
        deployment=deployment, issuer=Issuer(deployment), flow=CheckFlow(deployment),
        admin=Admin(deployment), api_keys=ApiKeys(deployment),
        passwords=AgentPasswords(deployment), reports=Reports(deployment),
        enrolled=EnrolledProofs(deployment), desk=FraudDesk(deployment),
        desk_users=DeskUsers(deployment), webhook=AlertWebhook(deployment))
    # The session (CSRF token, console sign-in) is signed with a key derived from the
    # deployment's hash key, so every instance of a deployment agrees without another secret.
    app.secret_key = deployment.hash_keys.session_secret()

    if app.config["TRUSTED_PROXIES"]:
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    Babel(app, locale_selector=i18n.select_locale)
    csrf.init_app(app)
    limiter.init_app(app)
    security.init_app(app)
    i18n.init_app(app)

    app.register_blueprint(public.bp)
    app.register_blueprint(wellknown.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(enroll.bp)
    app.register_blueprint(fraud.bp)
    _housekeeping(app)
    _alert_push(app)
    csrf.exempt(api.bp)  # the API authenticates every request with a bearer key, no cookies
    return app


def _housekeeping(app: Flask) -> None:
    """Every 30 s or so: sign a checkpoint when one is due (every 1000 events or 5 minutes),
    push it to the witnesses, and log the failed-lookup counts of finished minutes. (A server
    with no traffic signs at its next request.)"""
    from callproof.audit.log import AuditLog

    def housekeeping(found: Services) -> None:
        found.flow.flush_failed_lookups()
        AuditLog(found.deployment).checkpoint_if_due(push=True)  # to the witnesses too

    _after_responses(app, "HOUSEKEEPING_SECONDS", housekeeping)


def _alert_push(app: Flask) -> None:
    """Every few seconds (ALERT_PUSH_SECONDS), when a webhook is configured: push the fraud
    desk's new alerts and retry the due deliveries. (A server with no traffic pushes at its next
    request.)"""
    log = logging.getLogger("callproof.web")

    def alert_push(found: Services) -> None:
        if not found.webhook.configured:
            return
        result = found.webhook.push_due()
        if result.failed:
            log.warning("alert push: %d deliveries failed, %d pending", result.failed,
                        result.pending)

    _after_responses(app, "ALERT_PUSH_SECONDS", alert_push)


def _after_responses(app: Flask, interval: str, job: Callable[[Services], None]) -> None:
    """Run ``job`` after a response at most every ``app.config[interval]`` seconds: off the
    request in a thread (a slow witness or receiver must not delay a customer), in place when
    TESTING (deterministic), one run at a time. Never fails a request."""
    last = [time.monotonic()]
    busy = threading.Lock()
    log = logging.getLogger("callproof.web")

    def run(found: Services) -> None:
        try:
            job(found)
        except CallproofError as e:
            log.warning("%s could not run: %s", job.__name__, e.__class__.__name__)
        finally:
            busy.release()

    def after(response: Response) -> Response:
        if time.monotonic() - last[0] < app.config[interval]:
            return response
        last[0] = time.monotonic()
        if not busy.acquire(blocking=False):
            return response  # the last run is still going
        found = services()
        if app.config.get("TESTING"):
            run(found)
        else:
            threading.Thread(target=run, args=(found,), daemon=True).start()
        return response

    app.after_request(after)


__all__ = ["create_app", "services"]
