"""Public, machine-read endpoints: the JWKS and a health check."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from callproof import StoreError

from .extensions import services

bp = Blueprint("wellknown", __name__)


@bp.get("/.well-known/callproof/jwks.json")
def jwks() -> Response:
    """Every key that still verifies; cached briefly so a revocation spreads within a minute."""
    response = jsonify(services().admin.jwks())
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


@bp.get("/.well-known/callproof/checkpoint")
def checkpoint() -> Response:
    """The latest signed checkpoint of the audit log (C2SP signed note), or 404 before the first."""
    from callproof.audit.log import AuditLog

    latest = AuditLog(services().deployment).latest_checkpoint()
    if latest is None:
        response = Response("no checkpoint has been signed yet\n", 404, mimetype="text/plain")
    else:
        response = Response(latest.note, 200, mimetype="text/plain")
    response.headers["Cache-Control"] = "public, max-age=10"
    return response


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 when the database answers; 503 (with a JSON reason) when it does not."""
    try:
        with services().deployment.store.read() as conn:
            conn.exec_driver_sql("SELECT 1")
    except StoreError:
        return jsonify({"status": "unavailable", "reason": "database"}), 503
    return jsonify({"status": "ok"}), 200
