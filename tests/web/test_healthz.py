"""`/healthz` tells the truth about the faults an operator must act on (issue 13, items 16, 17):
the database behind the audit log's checkpoint (an old backup restored), a forked log, a data
dir that cannot be written. Each is a 503 with a JSON reason, said once in the server log."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from flask import Flask

from callproof import FixedClock, init_data_dir
from callproof.audit.log import AuditLog
from callproof.tlog import note
from verifier_app import create_app, services, wellknown

from .conftest import Web


def _issue(app: Flask, n: int) -> None:
    with app.app_context():
        for _ in range(n):
            services().issuer.issue(agent_id="a-001", reason="payment_failed")


def _checkpoint(app: Flask) -> AuditLog:
    with app.app_context():
        log = AuditLog(services().deployment)
        log.checkpoint()
        return log


def _health(app: Flask) -> tuple[int, dict[str, str]]:
    response = app.test_client().get("/healthz")
    assert response.headers["Content-Type"] == "application/json"
    return response.status_code, response.get_json()


@pytest.fixture(autouse=True)
def _fresh_log_state() -> Iterator[None]:
    wellknown._last_reported[0] = None
    yield
    wellknown._last_reported[0] = None


def test_healthy(web: Web) -> None:
    _issue(web.app, 2)
    _checkpoint(web.app)
    assert _health(web.app) == (200, {"status": "ok"})


def test_a_database_behind_the_checkpoint_file_is_503_and_logged_once(
        web: Web, caplog: pytest.LogCaptureFixture) -> None:
    """The log signed more than the database holds (what restoring an old backup leaves)."""
    _issue(web.app, 2)
    log = _checkpoint(web.app)
    with web.app.app_context():
        signed = log.latest_checkpoint()
        assert signed is not None
        ahead = note.Checkpoint(log.origin, signed.size + 40, bytes(32))
        (web.path / "log" / "checkpoint").write_text(
            note.sign_note(ahead.to_text(), [log.signer()]))
    caplog.set_level(logging.WARNING, logger="callproof.health")
    for _ in range(3):
        status, body = _health(web.app)
        assert status == 503, body
        assert body["status"] == "unavailable" and body["reason"] == "log_behind_checkpoint"
        assert f"holds {signed.size} log entries" in body["message"]
        assert f"checkpoint of {signed.size + 40}" in body["message"]
        assert str(web.path) not in body["message"]  # public: no paths
    said = [r for r in caplog.records if r.name == "callproof.health"]
    assert len(said) == 1 and said[0].levelno == logging.ERROR
    assert "log_behind_checkpoint" in said[0].getMessage()
    assert str(web.path / "log" / "checkpoint") in said[0].getMessage()


def test_a_forked_database_is_503(web: Web) -> None:
    _issue(web.app, 3)
    log = _checkpoint(web.app)
    with web.app.app_context():
        signed = log.latest_checkpoint()
        assert signed is not None
        other = note.Checkpoint(log.origin, signed.size, bytes(32))
        (web.path / "log" / "checkpoint").write_text(
            note.sign_note(other.to_text(), [log.signer()]))
    status, body = _health(web.app)
    assert (status, body["reason"]) == (503, "log_forked"), body


def test_an_unreadable_checkpoint_file_is_503(web: Web) -> None:
    _issue(web.app, 1)
    _checkpoint(web.app)
    (web.path / "log" / "checkpoint").write_text("not a checkpoint\n")
    assert _health(web.app)[1]["reason"] == "log_checkpoint_unreadable"


def test_a_restored_sqlite_backup_is_503(tmp_path: Path, clock: FixedClock,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """For real, on SQLite: back up, go on, sign a checkpoint, restore the backup."""
    monkeypatch.delenv("CALLPROOF_DATABASE_URL", raising=False)
    path = tmp_path / "data"
    init_data_dir(path, now=clock.now())
    app = create_app({"DATA_DIR": str(path), "TESTING": True})
    db = path / "callproof.db"
    try:
        _issue(app, 2)
        _checkpoint(app)
        backup = tmp_path / "backup.db"
        with closing(sqlite3.connect(db)) as source, \
                closing(sqlite3.connect(backup)) as target:
            source.backup(target)
        _issue(app, 3)
        _checkpoint(app)
        assert _health(app)[0] == 200
        with app.app_context():
            services().deployment.store.engine.dispose()
        for leftover in (path / "callproof.db-wal", path / "callproof.db-shm"):
            leftover.unlink(missing_ok=True)
        shutil.copyfile(backup, db)
        status, body = _health(app)
        assert (status, body["reason"]) == (503, "log_behind_checkpoint"), body
    finally:
        with app.app_context():
            services().deployment.store.close()


def test_too_little_free_space_is_503(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.disk_usage

    def nearly_full(p: str | os.PathLike[str]) -> object:
        total, used, _free = real(p)
        return type(real(p))(total, used, 3 * 1024 * 1024)

    monkeypatch.setattr(shutil, "disk_usage", nearly_full)
    status, body = _health(web.app)
    assert (status, body["reason"]) == (503, "disk_full"), body
    assert "3 MiB free, 16 MiB needed" in body["message"]
    monkeypatch.setenv("CALLPROOF_MIN_FREE_MB", "2")
    assert _health(web.app)[0] == 200


def test_a_probe_write_that_fails_is_503(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: object, flags: int, mode: int = 0o777) -> int:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(os, "open", refuse)
    status, body = _health(web.app)
    assert (status, body["reason"]) == (503, "data_dir_not_writable"), body
    assert "Read-only file system" in body["message"]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 8 MiB tmpfs (needs root and mount rights; skipped without them)."""
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_is_503_for_real(tiny_disk: Path, clock: FixedClock,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A data dir on a tmpfs filled to the last byte: the probe write fails with ENOSPC."""
    monkeypatch.delenv("CALLPROOF_DATABASE_URL", raising=False)
    monkeypatch.setenv("CALLPROOF_MIN_FREE_MB", "0")
    path = tiny_disk / "data"
    init_data_dir(path, now=clock.now())
    app = create_app({"DATA_DIR": str(path), "TESTING": True})
    try:
        assert _health(app)[0] == 200
        with open(tiny_disk / "filler", "wb", buffering=0) as f:
            with pytest.raises(OSError) as full:
                while True:
                    f.write(bytes(64 * 1024))
        assert full.value.errno == errno.ENOSPC
        status, body = _health(app)
        assert (status, body["reason"]) == (503, "disk_full"), body
        assert body["message"] == "The data dir's disk is full: free some space."
    finally:
        (tiny_disk / "filler").unlink(missing_ok=True)
        with app.app_context():
            services().deployment.store.close()
