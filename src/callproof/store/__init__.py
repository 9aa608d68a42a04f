"""One storage layer for SQLite (the embedded default) and PostgreSQL (scale-out).

SQLAlchemy Core over the tables in :mod:`.schema`, migrated by Alembic when a store is opened.
Every write runs in :meth:`Store.write`. On PostgreSQL writers do not wait for each other: each
step locks only the rows it changes (a ticket's row, its live code, a counter shard), so two
customers' transactions never queue behind one lock (ADR 0012). SQLite has one writer at a time
(``BEGIN IMMEDIATE``; that is SQLite), so there every transaction is kept short. Events go into a
queue (:mod:`.events`); the one integrator at a time (:mod:`.integrator`, under a named lock that
only it takes) gives them their leaf index and their leaf in the audit log's tree
(:mod:`.log_tree`).

    >>> store = Store.open("sqlite:///callproof-data/callproof.db")
    >>> with store.write() as conn:
    ...     events.append(store, conn, issuer="shop.example", type=AGENT_ADDED, at=now,
    ...                   agent_id="a-001")
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any, Protocol, cast

from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError

from callproof.errors import StoreError
from callproof.store import schema

__all__ = ["AppendGuard", "Store", "schema"]



def _lock_key(space: str, name: str) -> int:
    """The PostgreSQL advisory-lock key (a signed 64-bit integer) of a named lock. Advisory
    locks belong to the whole database; ``space`` (the store's URL, which names its schema too)
    keeps two deployments in one database from sharing them."""
    digest = hashlib.sha256(f"callproof\0{space}\0{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


#: SQLite's ``synchronous`` setting (ADR 0013): FULL, the default, fsyncs the WAL at every commit,
#: so a committed (acknowledged) ticket survives a power cut; NORMAL
#: (``CALLPROOF_SQLITE_SYNCHRONOUS=normal``) fsyncs it only at SQLite's own checkpoints, faster,
#: but the last commits before a power cut may roll back. Either way the log's checkpoint file is
#: written only after :meth:`Store.make_durable`.
SQLITE_SYNCHRONOUS = ("full", "normal")


def sqlite_synchronous() -> str:
    """The ``synchronous`` level for SQLite from ``CALLPROOF_SQLITE_SYNCHRONOUS`` (``full``)."""
    value = (os.environ.get("CALLPROOF_SQLITE_SYNCHRONOUS") or "full").strip().lower()
    if value not in SQLITE_SYNCHRONOUS:
        raise StoreError("CALLPROOF_SQLITE_SYNCHRONOUS must be full or normal")
    return value


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" hook below issue BEGIN itself (pysqlite's own is not IMMEDIATE).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA synchronous={sqlite_synchronous().upper()}")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("callproof_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _store_error(e: SQLAlchemyError) -> StoreError:
    """One line for the operator: what the driver said (its first line) and its kind; never
    the statement or its parameters, which may hold hashes of customers' data."""
    orig = getattr(e, "orig", None)
    detail = str(orig).strip().splitlines()[0] if orig is not None and str(orig).strip() else ""
    kind = (orig if orig is not None else e).__class__.__name__
    return StoreError(f"the database refused or is unreachable: {detail} ({kind})" if detail
                      else f"the database refused or is unreachable: {kind}")


class AppendGuard(Protocol):
    """A check run before every audit-log leaf appended through a store; it raises to refuse.

    The deployment's is :class:`callproof.store.log_tree.CheckpointGuard`.
    """

    def check(self, conn: Connection, issuer: str, idx: int | None = None) -> None: ...


class Store:
    """The database behind one deployment. Open it with :meth:`open`.

    ``append_guard``, when given, is asked before each leaf is appended to the audit log
    (:func:`callproof.store.log_tree.append_leaf`).
    """

    def __init__(self, engine: Engine, *, append_guard: AppendGuard | None = None) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.append_guard = append_guard
        self._lock_space = engine.url.render_as_string(hide_password=True)
        # Statements built once per table: building them costs more than running them.
        self._insert_if_absent: dict[str, Any] = {}
        self._thread_lock = threading.Lock()
        self._lock_file: int | None = None
        database = engine.url.database if self.dialect == "sqlite" else None
        if database and database != ":memory:":
            self._lock_file = os.open(f"{database}.writer-lock", os.O_RDWR | os.O_CREAT, 0o600)

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    @classmethod
    def open(cls, url: str, *, migrate: bool = True,
             append_guard: AppendGuard | None = None) -> Store:
        """Connect to ``url`` and bring the schema to the newest migration.

        Raises :class:`StoreError` when the database cannot be reached.
        """
        try:
            if url.startswith("sqlite"):
                sqlite_synchronous()  # a bad setting is refused here, not at the first query
                engine = create_engine(url, connect_args={"timeout": 30})
                event.listen(engine, "connect", _sqlite_pragmas)
                event.listen(engine, "begin", _sqlite_begin)
            else:
                engine = create_engine(url, pool_pre_ping=True)
        except (SQLAlchemyError, ImportError, ValueError) as e:
            raise StoreError(f"cannot use the database URL: {e}") from e
        store = cls(engine, append_guard=append_guard)
        store._keep_private()
        if migrate:
            store.migrate()
            store._keep_private()  # the WAL and shared-memory files exist after a write
        return store

    def _keep_private(self) -> None:
        """An SQLite database and its WAL are readable by their owner only (0600), whatever the
        umask or the folder they were made in: they hold keyed hashes and the signing key."""
        database = self.engine.url.database if self.dialect == "sqlite" else None
        if not database or database == ":memory:" or database.startswith("file:"):
            return
        path = os.path.abspath(database)
        if not os.path.exists(path):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        for name in (path, path + "-wal", path + "-shm", path + ".writer-lock"):
            try:
                if os.stat(name).st_mode & 0o077:
                    os.chmod(name, 0o600)
            except FileNotFoundError:
                continue

    def make_durable(self) -> None:
        """Make every transaction committed so far survive a power cut, before something outside
        the database (the log's checkpoint file) is written that describes them.

        On SQLite this fsyncs the database and its WAL (with ``synchronous=NORMAL`` commits are
        in the WAL but not yet on disk; with FULL they are, and this costs little). A PostgreSQL
        commit is durable when it returns (``synchronous_commit``, its operator's setting).
        Raises :class:`StoreError` when a file cannot be synced."""
        database = self.engine.url.database if self.dialect == "sqlite" else None
        if not database or database == ":memory:" or database.startswith("file:"):
            return
        path = os.path.abspath(database)
        for name in (path + "-wal", path):
            try:
                fd = os.open(name, os.O_RDONLY)
            except FileNotFoundError:
                continue  # no WAL: everything is in the database file
            except OSError as e:
                raise StoreError(f"cannot open the database to sync it: {e.strerror}") from e
            try:
                os.fsync(fd)
            except OSError as e:
                reason = ("no space left on the device" if e.errno == errno.ENOSPC
                          else e.strerror or e.__class__.__name__)
                raise StoreError(f"cannot sync the database: {reason}") from e
            finally:
                os.close(fd)

    def close(self) -> None:
        self.engine.dispose()
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None

    def migrate(self) -> None:
        """Run Alembic's upgrade to head, under the writer lock, if the schema is behind."""
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        location = str(resources.files("callproof.store").joinpath("migrations"))
        config = Config()
        config.set_main_option("script_location", location)
        head = ScriptDirectory.from_config(config).get_current_head()
        with self.write(lock="migrations") as conn:
            if MigrationContext.configure(conn).get_current_revision() == head:
                return
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    @contextmanager
    def write(self, *, lock: str | None = None) -> Iterator[Connection]:
        """A write transaction. It locks only the rows its statements lock, except:

        ``lock`` names a deployment-wide lock taken first and held to the end of the transaction
        (a PostgreSQL advisory lock; SQLite's single writer already is one), for the few jobs
        that must run one at a time across processes — migrations, signing a checkpoint, the
        webhook's outbox. Never on a customer's or a dialer's path.

        Raises :class:`StoreError` when the database is unreachable or refuses; nothing of the
        transaction is kept then.
        """
        with self._writing(lock, wait=True) as conn:
            yield cast(Connection, conn)  # a lock waited for is always held in the end

    @contextmanager
    def write_if_free(self, lock: str) -> Iterator[Connection | None]:
        """A write transaction holding the named lock, or ``None`` at once (nothing waits) when
        another transaction holds it. The integrator runs in one of these."""
        with self._writing(lock, wait=False) as conn:
            yield conn

    @contextmanager
    def _writing(self, lock: str | None, *, wait: bool) -> Iterator[Connection | None]:
        """The write transaction of :meth:`write` and :meth:`write_if_free`: the named lock
        taken first (waiting for it, or giving ``None`` when it is held), the driver's errors
        as :class:`StoreError`."""
        try:
            with self._sqlite_writer(), self.engine.connect() as conn:
                conn.execution_options(callproof_write=True)
                with conn.begin():
                    if lock is not None and self.dialect == "postgresql":
                        take = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
                        held = conn.execute(text(f"SELECT {take}(:k)"),  # noqa: S608 - fixed
                                            {"k": _lock_key(self._lock_space, lock)}).scalar()
                        if not wait and not held:
                            yield None
                            return
                    yield conn
        except SQLAlchemyError as e:
            raise _store_error(e) from e

    @contextmanager
    def _sqlite_writer(self) -> Iterator[None]:
        """On SQLite, queue writers on a lock that wakes the next one at once.

        SQLite's own busy handler polls with sleeps of up to 100 ms, which under load turns a
        1 ms transaction into a tail of hundreds of milliseconds. Writers here first take a
        thread lock (this process) and then an exclusive flock on a file beside the database
        (other processes), so BEGIN IMMEDIATE finds the database free. PostgreSQL queues on its
        advisory lock instead; nothing to do there.
        """
        if self._lock_file is None:
            yield
            return
        with self._thread_lock:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (a consistent snapshot on PostgreSQL and SQLite WAL)."""
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except SQLAlchemyError as e:
            raise _store_error(e) from e

    def insert_if_absent(self, conn: Connection, table: Table, values: dict[str, Any]) -> bool:
        """INSERT … ON CONFLICT DO NOTHING; True when the row was inserted."""
        stmt = self._insert_if_absent.get(table.name)
        if stmt is None:
            if self.dialect == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                stmt = pg_insert(table).on_conflict_do_nothing()
            else:
                from sqlalchemy.dialects.sqlite import insert as sqlite_insert

                stmt = sqlite_insert(table).on_conflict_do_nothing()
            # RETURNING tells "inserted" from "conflicted" on every driver (rowcount does not).
            stmt = stmt.returning(*table.primary_key.columns)
            self._insert_if_absent[table.name] = stmt
        return conn.execute(stmt, values).first() is not None
