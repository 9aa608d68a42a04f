"""Faults an operator must understand (issue 13, items 16–18), through the command line, the
API and the library call where they start: a full disk, a database error in the audit log's
append, a database behind the log's checkpoint file. Each is one line (or one JSON error) that
says what is wrong — never a traceback, never a bare exception class name.

Each test failed before its fix (issue 13 items 16–18).
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, event, insert, select

from callproof._cli import cli
from callproof.audit.log import AuditLog
from callproof.errors import CallproofError, StoreError
from callproof.store import schema
from callproof.store.log_tree import append_leaf
from callproof.tlog import note
from tests.conftest import World

from ._helpers import Run, callproof_over, ok


def _invoke(data: Path, *args: str, **env: str) -> Result:
    """`callproof` over ``data``, catching what escapes (a traceback is a failure here)."""
    return CliRunner().invoke(cli, ["--data-dir", str(data), *args], env=env or None)


def _one_line(result: Result, says: str) -> str:
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("callproof: ") and says in line, line
    return line


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return callproof_over(tmp_path / "data", "")  # SQLite: the disk is the data dir's


def _issue(run: Run, n: int = 2) -> None:
    for _ in range(n):
        ok(run("issue", "--agent-id", "a-001", "--reason", "payment_failed"))


# --- item 17: a full disk -----------------------------------------------------------------------


def _fail_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every fsync from Python code says the disk is full (SQLite's own are not Python's)."""
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)


def test_checkpoint_on_a_full_disk_is_one_line_and_records_nothing(
        run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    _issue(run)
    _fail_fsync(monkeypatch)
    line = _one_line(_invoke(data, "audit", "checkpoint"), "no space left on the device")
    # The database is synced before the checkpoint file is written (ADR 0013), so with every
    # fsync failing it is that sync which says so; either way nothing is recorded.
    assert ("cannot sync the database" in line
            or "cannot write the log's checkpoint file" in line), line
    monkeypatch.undo()
    leftovers = list((data / "log").iterdir()) if (data / "log").exists() else []
    assert leftovers == []  # neither the checkpoint file nor a temporary one
    with sqlite3.connect(data / "callproof.db") as db:
        assert db.execute("SELECT count(*) FROM log_checkpoints").fetchone() == (0,)
    ok(run("audit", "checkpoint"))  # space again: it signs


def test_export_on_a_full_disk_is_one_line(run: Run, tmp_path: Path) -> None:
    """The bundle's directory is on a full disk: /dev/full answers every write with ENOSPC."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    _issue(run)
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "checkpoint").symlink_to("/dev/full")
    line = _one_line(_invoke(tmp_path / "data", "audit", "export", "--out", str(out)),
                     "no space left on the device")
    assert f"cannot write the bundle in {out}" in line and "incomplete" in line
    assert not (out / ".entries.jsonl.tmp").exists()


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs filled to the last byte (needs root and mount rights; skipped without them)."""
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(where)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        with open(where / "filler", "wb", buffering=0) as f, pytest.raises(OSError):
            while True:
                f.write(bytes(16 * 1024))
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_checkpoint_and_export_on_a_real_full_disk(run: Run, tmp_path: Path,
                                                   full_disk: Path) -> None:
    data = tmp_path / "data"
    _issue(run)
    log_dir = data / "log"
    if log_dir.exists():
        shutil.rmtree(log_dir)
    log_dir.symlink_to(full_disk)  # the checkpoint file's directory is on the full disk
    _one_line(_invoke(data, "audit", "checkpoint"), "no space left on the device")
    log_dir.unlink()
    ok(run("audit", "checkpoint"))
    _one_line(_invoke(data, "audit", "export", "--out", str(full_disk / "bundle")),
              "no space left on the device")


def _database_full(max_pages: int) -> Any:
    """Every new SQLite connection may grow its file to ``max_pages`` pages only: SQLITE_FULL,
    "database or disk is full", as on a full disk."""
    def limit(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.execute(f"PRAGMA max_page_count = {max_pages}")
    return limit


def test_issue_on_a_full_database_says_why(run: Run, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with sqlite3.connect(data / "callproof.db") as db:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
    limit = _database_full(pages)
    event.listen(Engine, "connect", limit)
    try:
        for _ in range(300):  # until a page is needed that the "disk" does not have
            result = _invoke(data, "issue", "--agent-id", "a-001", "--reason", "payment_failed")
            if result.exit_code != 0:
                break
    finally:
        event.remove(Engine, "connect", limit)
    _one_line(result, "database or disk is full")


# --- item 18: a database error in the audit log's append ----------------------------------------


def test_a_database_error_in_the_leaf_append_is_a_store_error(world: World) -> None:
    """A constraint error leaves the connection usable; it must still not escape raw."""
    store, issuer = world.deployment.store, world.deployment.issuer_id
    idx = 1_000_000  # even: the append's first statement is the insert that collides
    with store.write() as conn:
        conn.execute(insert(schema.log_nodes).values(issuer_id=issuer, level=0, idx=idx,
                                                     hash=bytes(32)))
    try:
        with store.write() as conn:
            append_leaf(store, conn, issuer, idx, b"{}")
    except CallproofError as e:
        assert isinstance(e, StoreError) and "log" in str(e)
    else:
        pytest.fail("a colliding leaf was appended")
    with store.write() as conn:  # and the store goes on
        assert conn.execute(select(schema.log_nodes.c.idx).where(
            schema.log_nodes.c.idx == idx)).scalar_one() == idx


# --- item 16: the database behind the log's checkpoint file ------------------------------------


def _restore_old_backup(world: World) -> int:
    """What restoring a backup taken before the latest checkpoint leaves: the log's checkpoint
    file (signed by the log key) covers more entries than the database holds."""
    for _ in range(2):
        world.issuer.issue(agent_id="a-001", reason="payment_failed")
    log = AuditLog(world.deployment)
    signed = log.checkpoint()
    ahead = note.Checkpoint(log.origin, signed.size + 25, bytes(32))
    world.deployment.data_dir.log_checkpoint_file.write_text(
        note.sign_note(ahead.to_text(), [log.signer()]))
    return signed.size + 25


def test_the_cli_says_the_database_is_behind(world: World) -> None:
    size = _restore_old_backup(world)
    data = world.path
    env = {"CALLPROOF_DATABASE_URL": os.environ.get("CALLPROOF_DATABASE_URL", "")}
    for args in (("issue", "--agent-id", "a-001", "--reason", "payment_failed"),
                 ("audit", "checkpoint")):
        line = _one_line(_invoke(data, *args, **env), "behind")
        assert f"covers {size}" in line or f"checkpoint of {size}" in line, line


def test_the_api_says_the_database_is_behind(world: World) -> None:
    from verifier_app import create_app, services

    app = create_app({"DATA_DIR": str(world.path), "TESTING": True})
    try:
        with app.app_context():
            key, _record = services().api_keys.create("dialer")
        _restore_old_backup(world)
        response = app.test_client().post(
            "/api/v1/tickets", headers={"Authorization": f"Bearer {key}"},
            json={"agent_id": "a-001", "reason": "payment_failed"})
        assert response.status_code == 503
        message = response.get_json()["message"]
        assert "audit log" in message and "behind" in message, message
        assert "try again shortly" not in message
    finally:
        with app.app_context():
            services().deployment.store.close()


def _backup(db: Path, to: Path) -> None:
    with closing(sqlite3.connect(db)) as source, closing(sqlite3.connect(to)) as target:
        source.backup(target)


def test_a_lost_newest_database_starts_a_new_log_key(run: Run, tmp_path: Path) -> None:
    """The README's way forward when the newest database is gone: `audit new-log-key` keeps the
    old log's last checkpoint and key, makes a new key, and the log goes on under it."""
    data = tmp_path / "data"
    refused = _invoke(data, "audit", "new-log-key", "--yes")
    _one_line(refused, "nothing to recover")
    _issue(run, 2)
    ok(run("audit", "checkpoint"))
    _backup(data / "callproof.db", tmp_path / "backup.db")
    _issue(run, 3)
    old_checkpoint = ok(run("audit", "checkpoint")).stdout
    old_vkey = ok(run("audit", "vkey")).stdout.strip()
    _one_line(_invoke(data, "audit", "new-log-key", "--yes"), "it is not behind")
    for leftover in ("callproof.db-wal", "callproof.db-shm"):
        (data / leftover).unlink(missing_ok=True)
    shutil.copyfile(tmp_path / "backup.db", data / "callproof.db")  # the newest is lost
    _one_line(_invoke(data, "issue", "--agent-id", "a-001", "--reason", "payment_failed"),
              "behind")

    started = ok(run("audit", "new-log-key", "--yes"))
    assert f"old key: {old_vkey}" in started.stdout and old_checkpoint in started.stdout
    new_vkey = ok(run("audit", "vkey")).stdout.strip()
    assert new_vkey != old_vkey and f"new key: {new_vkey}" in started.stdout
    [kept] = (data / "log" / "retired").iterdir()
    assert kept.read_text() == old_checkpoint  # the old log's end, signed by the old key
    note.open_note(kept.read_text(), [note.Verifier.parse(old_vkey)])
    [old_key] = (data / "keys").glob("log.key.retired-*")
    assert oct(old_key.stat().st_mode & 0o777) == "0o600"

    _issue(run, 1)  # the log goes on, signed by the new key
    ok(run("audit", "export", "--out", str(tmp_path / "b")))
    verified = run("audit", "verify", str(tmp_path / "b"), "--log-key", new_vkey)
    assert verified.exit_code == 0, verified.output
    assert run("audit", "verify", str(tmp_path / "b"), "--log-key", old_vkey).exit_code == 1
