"""Staff sign-ins — agents on the console, users of the fraud desk — kept in the database.

The browser holds only a random 256-bit token (inside the app's signed session cookie); the
database keeps its SHA-256 with who signed in, until when, and what the page keeps for the
sign-in. Signing out deletes the row; a new password or ``disable`` deletes every row of that
person, so a copied cookie stops working at its next request, on every instance. A forged
session cookie is worth nothing without a live token. Sign-ins, failed sign-ins and sign-outs
are events (ids only).

Failed sign-ins are limited (:meth:`SignIns.attempt`, config ``[limits] sign_in_*``): per client
address and account id, per client address, and per account id whatever the address, counted in
the database (:mod:`callproof.counters`) so that every worker and instance shares one count. An
attempt takes its place in the counts before the password is checked, so parallel guesses
cannot all pass; a right password gives it back.

A right password also remembers the sign-in's network (IPv4 /24, IPv6 /48) for the account, for
``sign_in_known_network_days``: from a network the account signed in from, the per-account limit
does not refuse — its failures still count — so that someone who knows an agent's id, guessing
from elsewhere, cannot lock the agent out of their own office; the address limits hold there as
everywhere. The attempt that first finds an account's limit full writes
``sign_in.account_limited`` to the security log (:mod:`callproof.seclog`).

    >>> token = SignIns(dep).start("agent", "a-001")
    >>> SignIns(dep).check("agent", token).user_id
    'a-001'
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from callproof import counters, seclog
from callproof.deployment import Deployment
from callproof.errors import InputError
from callproof.protocol import events
from callproof.protocol.clock import to_epoch
from callproof.protocol.jws import b64url_encode
from callproof.protocol.networks import client_keys
from callproof.store import schema

__all__ = ["KINDS", "LIFETIME_SECONDS", "Attempt", "SignIn", "SignIns", "TooManySignIns",
           "end_sign_ins"]

#: Who signs in: an agent (the console) or a fraud-desk user.
KINDS = ("agent", "desk")
#: How long a sign-in lasts at most (a working day and a half), whatever happens.
LIFETIME_SECONDS = 12 * 3600

_T = schema.sign_ins
_N = schema.sign_in_networks


@dataclass(frozen=True)
class SignIn:
    """A live sign-in: who, since when, and the page's data for it."""

    kind: str
    user_id: str
    created_at: int
    data: Any

    def __repr__(self) -> str:  # the data may hold call codes
        return f"SignIn({self.kind!r}, {self.user_id!r})"


class TooManySignIns(InputError):
    """Too many failed sign-ins for this address, account, or both: try again later."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many failed sign-ins; try again later",
                         reason="too_many_sign_ins")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Attempt:
    """A sign-in attempt that holds its places in the failure counts until it succeeds."""

    kind: str
    counted: tuple[tuple[str, str], ...]
    at: int
    #: The client's network key (its address key when it has none), remembered for the account
    #: when the password is right; None without a client address.
    network: str | None = None

    def __repr__(self) -> str:  # the subjects and the network hold an address and the typed id
        return f"Attempt({self.kind!r})"


def _hash(token: str) -> str:
    return b64url_encode(hashlib.sha256(token.encode("utf-8")).digest())


def _account(user_id: str) -> str:
    """The account id as the limits and the known networks name it."""
    return user_id.strip()[:64]


def _network_name(dep: Deployment, kind: str, account: str, network: str) -> str:
    """The stored name of ``network`` known for the account: a keyed hash (JSON keeps the parts
    apart whatever characters the id holds)."""
    return dep.hash_keys.client_hash(
        "sign-in-network:" + json.dumps([dep.issuer_id, kind, account, network]))


def end_sign_ins(dep: Deployment, conn: Connection, kind: str, user_id: str) -> int:
    """End every sign-in of one person, inside the caller's transaction (a new password, a
    disabled account); returns how many ended."""
    return int(conn.execute(delete(_T).where(_T.c.issuer_id == dep.issuer_id,
                                             _T.c.kind == kind,
                                             _T.c.user_id == user_id)).rowcount)


class SignIns:
    """The sign-ins of one issuer's staff."""

    def __init__(self, deployment: Deployment) -> None:
        self.dep = deployment

    def attempt(self, kind: str, user_id: str, client_address: str | None, *,
                now: datetime | None = None) -> Attempt:
        """Count a sign-in attempt against the failure limits before its password is checked.

        Raises :class:`TooManySignIns` (nothing counted) when the address and account, the
        address, or the account has had its failed sign-ins in the window — the account's
        limit only from a network the account has not signed in from in
        ``sign_in_known_network_days``. A right password then gives the places back and makes
        the network known (:meth:`start` with the attempt)."""
        _check_kind(kind)
        limits = self.dep.config.limits
        window = limits.sign_in_window_seconds
        account = _account(user_id)
        address, network = client_keys(client_address) if client_address else (None, None)
        network = network or address
        per_account = f"sign-in:{kind}:account"
        wanted = [(per_account, account, limits.sign_in_failures_per_account)]
        if address is not None:
            wanted += [(f"sign-in:{kind}:address", address, limits.sign_in_failures_per_address),
                       (f"sign-in:{kind}:address+account", f"{address}|{account}",
                        limits.sign_in_failures_per_address_and_account)]
        at = to_epoch(self.dep.now(now))
        taken: list[tuple[str, str]] = []
        result: Attempt | None = None
        tripped: dict[str, str | bool] | None = None
        with self.dep.store.write() as conn:
            for purpose, subject, limit in wanted:
                if counters.take(self.dep, conn, purpose, subject, at, window, limit=limit):
                    taken.append((purpose, subject))
                    continue
                if purpose == per_account:
                    tripped = self._account_tripped(conn, kind, account, at)
                    if network is not None and self._known(conn, kind, account, network, at):
                        # Spared, not free: its failures still fill the account's count for
                        # every other network, and it gives its place back like any other.
                        counters.add(self.dep, conn, purpose, subject, at, window)
                        taken.append((purpose, subject))
                        continue
                for p, s in taken:
                    counters.add(self.dep, conn, p, s, at, window, -1)
                break
            else:
                result = Attempt(kind, tuple(taken), at, network)
        if tripped is not None:  # said only once committed; the client as the view logs it
            seclog.event("sign_in.account_limited", level=logging.WARNING, kind=kind,
                         client=seclog.client_field(self.dep.hash_keys,
                                                    address and address.removeprefix("addr:")),
                         **tripped)
        if result is None:
            raise TooManySignIns(window)
        return result

    def _account_tripped(self, conn: Connection, kind: str, account: str,
                         at: int) -> dict[str, str | bool] | None:
        """The log fields of an account whose limit this attempt finds full first in the window
        (one line per trip, however many attempts it then refuses), else None."""
        window = self.dep.config.limits.sign_in_window_seconds
        if not counters.take(self.dep, conn, f"sign-in:{kind}:account-limited", account, at,
                             window, limit=1):
            return None
        return {"user_id": account} if _is_account(conn, self.dep, kind, account) else \
            {"unknown_id": True}

    def _known(self, conn: Connection, kind: str, account: str, network: str, at: int) -> bool:
        """Whether the account signed in from ``network`` in ``sign_in_known_network_days``."""
        return conn.execute(select(_N.c.name_hash).where(
            _N.c.name_hash == _network_name(self.dep, kind, account, network),
            _N.c.last_at >= self._known_since(at))).first() is not None

    def _known_since(self, at: int) -> int:
        """The oldest last sign-in that still makes a network known at ``at``."""
        return at - self.dep.config.limits.sign_in_known_network_days * 86400

    def start(self, kind: str, user_id: str, *, now: datetime | None = None,
              attempt: Attempt | None = None) -> str:
        """A new sign-in after a right password: its token for the browser (shown once). The
        ``attempt`` that checked the password gives its places in the failure counts back, and
        its network becomes known for the account (:meth:`attempt`)."""
        _check_kind(kind)
        at = to_epoch(self.dep.now(now))
        token = secrets.token_urlsafe(32)
        with self.dep.store.write() as conn:
            if attempt is not None:
                window = self.dep.config.limits.sign_in_window_seconds
                for purpose, subject in attempt.counted:
                    counters.add(self.dep, conn, purpose, subject, attempt.at, window, -1)
                if attempt.network is not None:
                    self._remember(conn, kind, user_id, attempt.network, at)
            conn.execute(insert(_T).values(token_hash=_hash(token), issuer_id=self.dep.issuer_id,
                                           kind=kind, user_id=user_id, created_at=at,
                                           expires_at=at + LIFETIME_SECONDS, data=None))
            self.dep.record(conn, events.SIGNED_IN, self.dep.now(now), kind=kind,
                            user_id=user_id)
        return token

    def _remember(self, conn: Connection, kind: str, user_id: str, network: str,
                  at: int) -> None:
        name = _network_name(self.dep, kind, _account(user_id), network)
        if not self.dep.store.insert_if_absent(conn, _N, {"name_hash": name, "last_at": at}):
            conn.execute(update(_N).where(_N.c.name_hash == name).values(last_at=at))

    def failed(self, kind: str, user_id: str, *, now: datetime | None = None) -> None:
        """Record a failed sign-in: the account's id when it is one, else only that the id was
        unknown — what was typed there may be a password typed in the wrong box, and the event
        record is kept for good. Never the password."""
        _check_kind(kind)
        with self.dep.store.write() as conn:
            known = _is_account(conn, self.dep, kind, user_id[:64])
            self.dep.record(conn, events.SIGN_IN_FAILED, self.dep.now(now), kind=kind,
                            **({"user_id": user_id[:64]} if known else {"unknown_id": True}))

    def check(self, kind: str, token: Any, *, now: datetime | None = None) -> SignIn | None:
        """The live sign-in of ``token`` (None when unknown, ended, expired or of another
        kind)."""
        if not isinstance(token, str) or not 16 <= len(token) <= 128:
            return None
        at = to_epoch(self.dep.now(now))
        with self.dep.store.read() as conn:
            row = conn.execute(select(_T).where(_T.c.token_hash == _hash(token))).first()
        if row is None or row.kind != kind or row.issuer_id != self.dep.issuer_id or \
                not row.created_at <= at < row.expires_at:
            return None
        return SignIn(row.kind, row.user_id, int(row.created_at),
                      json.loads(row.data) if row.data else None)

    def keep(self, token: str, data: Any) -> None:
        """Keep ``data`` (JSON) for the sign-in, server-side."""
        with self.dep.store.write() as conn:
            conn.execute(update(_T).where(_T.c.token_hash == _hash(token))
                         .values(data=json.dumps(data, separators=(",", ":"))))

    def end(self, token: Any, *, now: datetime | None = None) -> None:
        """Sign out: the token is worth nothing from now on."""
        if not isinstance(token, str):
            return
        with self.dep.store.write() as conn:
            row = conn.execute(delete(_T).where(_T.c.token_hash == _hash(token))
                               .returning(_T.c.kind, _T.c.user_id)).first()
            if row is not None:
                self.dep.record(conn, events.SIGNED_OUT, self.dep.now(now), kind=row.kind,
                                user_id=row.user_id)

    def purge(self, *, now: datetime | None = None) -> int:
        """Delete expired sign-ins, networks no longer known (``sign_in_known_network_days``)
        and the limits' counter minutes past every window (housekeeping); returns how many
        sign-ins ended."""
        at = to_epoch(self.dep.now(now))
        with self.dep.store.write() as conn:
            ended = int(conn.execute(delete(_T).where(_T.c.expires_at <= at)).rowcount)
            conn.execute(delete(_N).where(_N.c.last_at < self._known_since(at)))
        counters.purge(self.dep, now=now)
        return ended


def _is_account(conn: Connection, dep: Deployment, kind: str, user_id: str) -> bool:
    """Whether ``user_id`` is an account of ``kind`` (else what was typed may be a password,
    which no record or log may keep)."""
    table = schema.agents if kind == "agent" else schema.desk_users
    id_column = table.c.agent_id if kind == "agent" else table.c.user_id
    return conn.execute(select(id_column).where(
        table.c.issuer_id == dep.issuer_id, id_column == user_id)).first() is not None


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InputError(f"a sign-in is an agent's or a desk user's, not {kind!r}",
                         reason="bad_kind")
