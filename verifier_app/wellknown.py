"""Public, machine-read endpoints: the JWKS and a health check."""

from __future__ import annotations

from pathlib import Path

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
    """The latest signed checkpoint (C2SP signed note, cosigned), or 404 before the first."""
    from callproof.audit.log import AuditLog

    log = AuditLog(services().deployment)
    latest = log.latest_checkpoint()
    if latest is None:
        response = Response("no checkpoint has been signed yet\n", 404, mimetype="text/plain")
    else:  # with every witness cosignature kept for it
        response = Response(log.cosigned_note(latest), 200, mimetype="text/plain")
    response.headers["Cache-Control"] = "public, max-age=10"
    return response


_LOGO_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".svg": "image/svg+xml"}


@bp.get("/brand/logo")
def logo() -> Response:
    """The company's logo from the data dir (same origin, so the CSP allows it), or 404."""
    dep = services().deployment
    name = dep.config.company.logo
    suffix = Path(name).suffix.lower()
    path = (dep.data_dir.path / name).resolve()
    if not name or suffix not in _LOGO_TYPES or dep.data_dir.path.resolve() not in path.parents \
            or not path.is_file() or path.stat().st_size > 512 * 1024:
        return Response("no logo\n", 404, mimetype="text/plain")
    response = Response(path.read_bytes(), 200, mimetype=_LOGO_TYPES[suffix])
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
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
