"""Public, machine-read endpoints: the JWKS, the log's checkpoint and a health check.

``/healthz`` answers 200 only when this instance can do its work: the database answers, the
audit log's tree in it is not behind (or forked from) the checkpoint file the log keeps outside
the database — as after restoring an old backup — and the data dir can be written (free space
above ``CALLPROOF_MIN_FREE_MB``, default 16, and a probe write succeeds). Otherwise it answers
503 with ``{"status": "unavailable", "reason": …, "message": …}`` in an operator's words (no
paths: the endpoint is public), and the server log says why, with the paths, once per problem.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify

from callproof import StoreError
from callproof.deployment import Deployment
from callproof.errors import LogError
from callproof.store.log_tree import read_checkpoint_file, root_at, tree_size
from callproof.tlog.proof import log_origin

from .extensions import limiter_health, services

bp = Blueprint("wellknown", __name__)
log = logging.getLogger("callproof.health")

#: Below this many free bytes in the data dir /healthz says the disk is full.
DEFAULT_MIN_FREE_MB = 16
#: The README section an operator reads for a log the database is behind.
RECOVERY = "README, \"When the database is behind the log\""


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


class Unhealthy(Exception):
    """One reason this instance cannot serve: ``reason`` for machines, ``message`` for the
    operator (public: no paths), ``detail`` for the server log."""

    def __init__(self, reason: str, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.reason, self.message, self.detail = reason, message, detail or message


def _check_database(dep: Deployment) -> None:
    try:
        with dep.store.read() as conn:
            conn.exec_driver_sql("SELECT 1")
    except StoreError as e:
        raise Unhealthy("database", "The database does not answer.", str(e)) from e


#: The checkpoint file versions whose root the tree was found to hold: checked once each.
_seen_roots: set[tuple[str, int, int, int]] = set()


def _check_audit_log(dep: Deployment) -> None:
    """The database's audit log reaches, and agrees with, the checkpoint file (the same rule
    the store applies before each append, spec/audit-log.md §3)."""
    path = dep.data_dir.log_checkpoint_file
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return  # no checkpoint signed yet
    except OSError as e:
        raise Unhealthy("log_checkpoint_unreadable", "The audit log's checkpoint file cannot "
                        "be read.", f"{path}: {e}") from e
    stamp = (str(path), st.st_mtime_ns, st.st_size, st.st_ino)
    issuer = dep.issuer_id
    try:
        checkpoint = read_checkpoint_file(path, log_origin(issuer))
    except LogError as e:
        raise Unhealthy("log_checkpoint_unreadable", "The audit log's checkpoint file cannot "
                        "be read.", str(e)) from e
    try:
        with dep.store.read() as conn:
            size = tree_size(conn, issuer)
            if size < checkpoint.size:
                raise Unhealthy(
                    "log_behind_checkpoint",
                    f"The database is behind the audit log: it holds {size} log entries but "
                    f"the log has signed a checkpoint of {checkpoint.size} (an old backup "
                    "restored?). Nothing that must be logged can be done until the newest "
                    f"database is back; see the {RECOVERY}.",
                    f"the database's audit log has {size} entries but the checkpoint file "
                    f"{path} covers {checkpoint.size}: the database is behind (a restored "
                    f"backup?). Restore the newest database; see the {RECOVERY}")
            if stamp not in _seen_roots:
                if root_at(conn, issuer, checkpoint.size) != checkpoint.root:
                    raise Unhealthy(
                        "log_forked",
                        f"The database's audit log is not the one the log signed: its first "
                        f"{checkpoint.size} entries differ from the signed checkpoint. Nothing "
                        f"that must be logged can be done; see the {RECOVERY}.",
                        f"the database's tree at size {checkpoint.size} does not have the root "
                        f"of the checkpoint file {path}: another database, or a damaged one")
                _seen_roots.add(stamp)
    except StoreError as e:
        raise Unhealthy("database", "The database does not answer.", str(e)) from e


def _min_free_bytes() -> int:
    configured = current_app.config.get("MIN_FREE_MB")
    if configured is None:
        configured = os.environ.get("CALLPROOF_MIN_FREE_MB", str(DEFAULT_MIN_FREE_MB))
    try:
        return max(0, int(float(str(configured)) * 1024 * 1024))
    except ValueError:
        return DEFAULT_MIN_FREE_MB * 1024 * 1024


def _probe_write(directory: Path) -> None:
    """Create, write (a block) and remove a file in ``directory``; raise what the OS says."""
    probe = directory / f".healthz-{os.getpid()}-{threading.get_ident()}"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, bytes(4096))
    finally:
        os.close(fd)
        probe.unlink(missing_ok=True)


def _check_disk(dep: Deployment) -> None:
    """The data dir (the SQLite database, the checkpoint file) can be written."""
    root = dep.data_dir.path
    folders = [root] + [p for p in (dep.data_dir.log_checkpoint_file.parent,) if p.is_dir()]
    floor = _min_free_bytes()
    for folder in folders:
        try:
            free = shutil.disk_usage(folder).free
            if free < floor:
                raise Unhealthy(
                    "disk_full", f"The data dir's disk is nearly full ({free // (1024 * 1024)} "
                    f"MiB free, {floor // (1024 * 1024)} MiB needed): free some space.",
                    f"{folder}: {free} bytes free, below the {floor} of CALLPROOF_MIN_FREE_MB")
            _probe_write(folder)
        except OSError as e:
            full = e.errno in (errno.ENOSPC, errno.EDQUOT)
            raise Unhealthy(
                "disk_full" if full else "data_dir_not_writable",
                "The data dir's disk is full: free some space." if full else
                f"The data dir cannot be written ({e.strerror or e.__class__.__name__}).",
                f"{folder}: {e}") from e


#: The checks /healthz runs, in order; the first that fails is the answer.
CHECKS: list[Callable[[Deployment], None]] = [_check_database, _check_audit_log, _check_disk]

_last_reported: list[tuple[str, str] | None] = [None]  # what the server log said last


def _report(problem: Unhealthy | None) -> None:
    """Log a problem once (ERROR), and once more when it is gone."""
    key = None if problem is None else (problem.reason, problem.detail)
    if key == _last_reported[0]:
        return
    if problem is not None:
        log.error("health check: unavailable (%s): %s", problem.reason, problem.detail)
    elif _last_reported[0] is not None:
        log.warning("health check: ok again (was %s)", _last_reported[0][0])
    _last_reported[0] = key


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 when this instance can work; 503 with a JSON reason and message when it cannot."""
    dep = services().deployment
    try:
        for check in CHECKS:
            check(dep)
    except Unhealthy as problem:
        _report(problem)
        response = jsonify({"status": "unavailable", "reason": problem.reason,
                            "message": problem.message})
        response.headers["Cache-Control"] = "no-store"
        return response, 503
    _report(None)
    # Limits counted per process while their storage is gone: the instance works, so 200, and
    # says so (extensions.limiter_health).
    return jsonify({"status": "ok", **limiter_health()}), 200
