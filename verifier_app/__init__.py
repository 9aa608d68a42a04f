"""The reference verifier: the customer's check page, the issuer API and the agent console.

A thin Flask shell over the ``callproof`` library: forms, templates, HTTP and languages. All the
protocol lives in the library.

    $ flask --app verifier_app run            # CALLPROOF_DATA_DIR picks the data dir
    $ callproof serve --workers 2              # the same app under gunicorn

``create_app(test_config)`` reads, besides ``test_config``: ``CALLPROOF_DATA_DIR``,
``CALLPROOF_TRUSTED_PROXIES`` (how many proxies in front set X-Forwarded-For; default 0: the
socket's address is the client's), ``CALLPROOF_TRUSTED_PROXY_ADDRESSES`` (the proxies' addresses
or networks, comma-separated: forwarding headers count only from them),
``CALLPROOF_RATELIMIT_STORAGE`` (``memory://`` by default, ``redis://host:6379`` for several
instances: the API's limits; failed lookups and sign-ins are counted by the library, in the
database), ``CALLPROOF_HTTPS=1`` (served over HTTPS: HSTS, ``Secure`` ``__Host-`` cookies; see
``security``), ``CALLPROOF_SESSION_SECRET`` (else the deployment's own, in the database:
``callproof.sealing.session_secret``) and ``CALLPROOF_LOG_FORMAT`` (the security log on stderr,
``json`` or ``text``: ``callproof.seclog``). The app runs no background duty: integrating the
audit log, checkpoints, the fraud desk's webhook and housekeeping run in ``callproof worker``
(one is embedded in ``callproof serve``).
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from flask_babel import Babel

from callproof import Admin, CheckFlow, Deployment, EnrolledProofs, Issuer, seclog
from callproof.agent_auth import AgentPasswords
from callproof.apikeys import ApiKeys
from callproof.desk_users import DeskUsers
from callproof.fraud import FraudDesk
from callproof.scam_reports import Reports
from callproof.sealing import session_secret
from callproof.sign_ins import SignIns
from callproof.webhook import AlertWebhook

from . import api, console, enroll, errors, fraud, i18n, public, security, voice, wellknown
from .extensions import Services, csrf, init_limiter, services


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app. Raises ConfigError / StoreError when the data dir or database is unusable."""
    app = Flask(__name__)
    app.config.from_mapping(
        DATA_DIR=os.environ.get("CALLPROOF_DATA_DIR"),
        TRUSTED_PROXIES=int(os.environ.get("CALLPROOF_TRUSTED_PROXIES", "0")),
        TRUSTED_PROXY_ADDRESSES=os.environ.get("CALLPROOF_TRUSTED_PROXY_ADDRESSES", ""),
        HTTPS=os.environ.get("CALLPROOF_HTTPS") == "1",
        RATELIMIT_STORAGE_URI=os.environ.get("CALLPROOF_RATELIMIT_STORAGE", "memory://"),
        API_KEY_LIMIT=os.environ.get("CALLPROOF_API_KEY_LIMIT", "600 per minute"),
        AGENT_ISSUE_LIMIT=os.environ.get("CALLPROOF_AGENT_ISSUE_LIMIT", "30 per minute"),
        MAX_CONTENT_LENGTH=16 * 1024,  # every form and API body here is far smaller
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",  # name and Secure follow HTTPS (security.init_app)
        WTF_CSRF_TIME_LIMIT=3600,
        BABEL_TRANSLATION_DIRECTORIES="translations",
        BABEL_DEFAULT_LOCALE="en",
        JSON_SORT_KEYS=False,
    )
    if test_config:
        app.config.update(test_config)

    deployment = Deployment.open(app.config["DATA_DIR"])
    app.extensions["callproof"] = Services(
        deployment=deployment, issuer=Issuer(deployment), flow=CheckFlow(deployment),
        admin=Admin(deployment), api_keys=ApiKeys(deployment),
        passwords=AgentPasswords(deployment), reports=Reports(deployment),
        enrolled=EnrolledProofs(deployment), desk=FraudDesk(deployment),
        desk_users=DeskUsers(deployment), webhook=AlertWebhook(deployment),
        sign_ins=SignIns(deployment))
    # The session (CSRF token, the sign-in's token) is signed with its own secret, shared by
    # every instance through the database and sealed like the signing keys (sealing.py).
    app.secret_key = session_secret(deployment)
    seclog.configure()  # the security log on stderr (CALLPROOF_LOG_FORMAT)

    Babel(app, locale_selector=i18n.select_locale)
    csrf.init_app(app)
    init_limiter(app)
    security.init_app(app)  # after csrf: its same-origin check follows the token check
    i18n.init_app(app)

    app.register_blueprint(public.bp)
    app.register_blueprint(wellknown.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(enroll.bp)
    app.register_blueprint(fraud.bp)
    voice.init_app(app)  # the voice line's TwiML webhooks (signed by the platform)
    errors.init_app(app)
    csrf.exempt(api.bp)  # the API authenticates every request with a bearer key, no cookies
    return app


__all__ = ["create_app", "services"]
