"""Jobs that run after responses: the audit log's housekeeping and the fraud desk's alert push.

No extra process or timer: after a response, a job whose interval has passed runs off the request
in a thread (a slow witness or webhook receiver must not delay a customer), or in place when
TESTING, so tests stay deterministic. A server with no traffic runs its jobs at its next request.

    jobs.init_app(app)      # in create_app, after the blueprints
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from flask import Flask, Response

from callproof import CallproofError

from .extensions import Services, services

log = logging.getLogger("callproof.web")


def init_app(app: Flask) -> None:
    """Schedule the housekeeping (every HOUSEKEEPING_SECONDS) and the alert push (every
    ALERT_PUSH_SECONDS) after ``app``'s responses."""
    _housekeeping(app)
    _alert_push(app)


def _housekeeping(app: Flask) -> None:
    """Every 30 s or so: sign a checkpoint when one is due (every 1000 events or 5 minutes),
    push it to the witnesses, and log the failed-lookup counts of finished minutes."""
    from callproof.audit.log import AuditLog  # loaded by create_app, not by the import

    def housekeeping(found: Services) -> None:
        found.flow.flush_failed_lookups()
        AuditLog(found.deployment).checkpoint_if_due(push=True)  # to the witnesses too

    _after_responses(app, "HOUSEKEEPING_SECONDS", housekeeping)


def _alert_push(app: Flask) -> None:
    """Every few seconds (ALERT_PUSH_SECONDS), when a webhook is configured: push the fraud
    desk's new alerts and retry the due deliveries."""

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
    request in a thread, in place when TESTING, one run at a time. Never fails a request."""
    last = [time.monotonic()]
    busy = threading.Lock()

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
