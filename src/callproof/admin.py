"""The registries behind tickets: signing keys, agents, reasons, and the customer link.

Agents' names and reason texts come from here, never typed free when a ticket is issued; a
customer's ref becomes a random handle whose one deletable row is all that links them.

    >>> admin = Admin(Deployment.open("callproof-data"))
    >>> admin.add_agent("a-017", "Mei Lin", department="Billing")
    >>> admin.rotate_key()            # the new key signs; the old one verifies its tickets out
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update

from callproof.config import passphrase
from callproof.deployment import Deployment
from callproof.errors import ConfigError, InputError, NotFound
from callproof.proofs import forget_handle
from callproof.protocol import events
from callproof.protocol.clock import to_epoch
from callproof.protocol.keys import ACTIVE, RETIRED, REVOKED, SigningKey, TicketKey
from callproof.protocol.languages import LANGUAGES
from callproof.protocol.ticket import MAX_LIFETIME
from callproof.sign_ins import end_sign_ins
from callproof.store import schema

#: The named lock the registry's writes (keys, agents, reasons, customers, API keys, passwords)
#: take: operators' changes run one at a time; no customer or dialer path takes it.
REGISTRY_LOCK = "registry"

_ENCRYPTED = "-----BEGIN ENCRYPTED PRIVATE KEY-----"

_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")


#: The languages an agent's name and department may have a text of their own in (the given
#: name serves English and every language without one).
NAME_LANGUAGES = ("zh-Hant", "zh-Hans")
_NAME_COLUMNS = {"zh-Hant": "zh_hant", "zh-Hans": "zh_hans"}


@dataclass(frozen=True)
class Agent:
    agent_id: str
    name: str
    department: str | None
    enabled: bool
    #: The name and the department per language (``zh-Hant``, ``zh-Hans``), where given.
    names: dict[str, str] = field(default_factory=dict)
    department_names: dict[str, str] = field(default_factory=dict)

    def name_in(self, lang: str) -> str:
        """The agent's name in ``lang``, else the given name."""
        return self.names.get(lang) or self.name

    def department_in(self, lang: str) -> str | None:
        """The department in ``lang``, else the given one (None when there is none)."""
        if self.department is None:
            return None
        return self.department_names.get(lang) or self.department

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.agent_id, "name": self.name, "department": self.department,
                "enabled": self.enabled, "names": dict(self.names),
                "department_names": dict(self.department_names)}


@dataclass(frozen=True)
class Reason:
    code: str
    text: dict[str, str]
    enabled: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "text": dict(self.text)}


def check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InputError(f"{what} must be 1–64 letters, digits or . _ : @ -", reason="bad_id")
    return value


def check_text(value: str, what: str, limit: int = 128) -> str:
    value = value.strip() if isinstance(value, str) else ""
    if not value or len(value) > limit or not value.isprintable():
        raise InputError(f"{what} must be 1–{limit} printable characters", reason="bad_text")
    return value


class Admin:
    """Registry operations for one issuer; each change is one transaction with its event."""

    def __init__(self, deployment: Deployment) -> None:
        self.dep = deployment

    # --- signing keys ---------------------------------------------------------------------

    def keys(self) -> list[TicketKey]:
        with self.dep.store.read() as conn:
            return list(self.dep.keyset(conn).values())

    def jwks(self, now: datetime | None = None) -> dict[str, Any]:
        """The public JWKS: every key that still verifies a live ticket."""
        with self.dep.store.read() as conn:
            keyset = self.dep.keyset(conn)
        return keyset.to_jwks(self.dep.now(now), max_lifetime=MAX_LIFETIME,
                              skew=self.dep.config.limits.skew)

    def rotate_key(self, now: datetime | None = None) -> str:
        """Make a new active key and retire the active one, in one transaction.

        The new key's private half goes into the database (``signing_key_secrets``), PKCS#8
        encrypted under CALLPROOF_KEY_PASSPHRASE (unencrypted in a demo without one), so every
        instance of the deployment signs with it from its next ticket (ADR 0011); the retired
        key's private half is deleted, since nothing signs with it again. Returns the new kid.
        The retired key keeps verifying its tickets until they expire.

        Raises :class:`ConfigError` when the active key is encrypted but no passphrase is set
        here: the new key would be the only one stored in clear.
        """
        now = self.dep.now(now)
        key = SigningKey.generate()
        pem = key.to_pem(passphrase())
        t, s = schema.signing_keys, schema.signing_key_secrets
        issuer = self.dep.issuer_id
        with self.dep.store.write(lock=REGISTRY_LOCK) as conn:
            if passphrase() is None and any(p.startswith(_ENCRYPTED) for (p,) in conn.execute(
                    select(s.c.pem).where(s.c.issuer_id == issuer))):
                raise ConfigError("the active signing key is stored encrypted: set "
                                  "CALLPROOF_KEY_PASSPHRASE to rotate it")
            for (kid,) in conn.execute(select(t.c.kid).where(
                    t.c.issuer_id == issuer, t.c.status == ACTIVE)).all():
                conn.execute(update(t).where(t.c.issuer_id == issuer, t.c.kid == kid)
                             .values(status=RETIRED, retired_at=to_epoch(now)))
                conn.execute(delete(s).where(s.c.issuer_id == issuer, s.c.kid == kid))
                self.dep.record(conn, events.KEY_RETIRED, now, kid=kid)
            conn.execute(insert(t).values(issuer_id=issuer, kid=key.kid, x=key.x,
                                          status=ACTIVE, created_at=to_epoch(now)))
            conn.execute(insert(s).values(issuer_id=issuer, kid=key.kid,
                                          pem=pem.decode("ascii"), created_at=to_epoch(now)))
            self.dep.record(conn, events.KEY_CREATED, now, kid=key.kid, x=key.x)
        return key.kid

    def import_key_files(self, now: datetime | None = None) -> list[str]:
        """Copy the active key's ``keys/<kid>.pem`` of a data dir made before ADR 0011 into the
        database, so that every instance finds it; return the kids copied (none when the
        database has it already or there is no file). The file stays: delete it once every
        instance runs this version."""
        with self.dep.store.write(lock=REGISTRY_LOCK) as conn:
            t, s = schema.signing_keys, schema.signing_key_secrets
            missing = conn.execute(select(t.c.kid).where(
                t.c.issuer_id == self.dep.issuer_id, t.c.status == ACTIVE,
                t.c.kid.not_in(select(s.c.kid).where(s.c.issuer_id == self.dep.issuer_id))
            )).scalars().all()
            copied = []
            for kid in missing:
                if self.dep.data_dir.key_file(kid).exists():
                    import_key_file(self.dep, conn, kid, self.dep.now(now))
                    copied.append(kid)
            return copied

    def revoke_key(self, kid: str, *, compromised_at: datetime | None = None,
                   now: datetime | None = None) -> None:
        """Revoke a key: from now on it verifies no live ticket, on every running server.

        ``compromised_at`` (default: now) is when the key may have been stolen; auditors still
        accept tickets logged before it. Raises :class:`NotFound` for an unknown kid and
        :class:`InputError` for a key already revoked.
        """
        now = self.dep.now(now)
        compromised = self.dep.now(compromised_at) if compromised_at else now
        if compromised > now:
            raise InputError("the compromise time cannot be in the future", reason="bad_time")
        t = schema.signing_keys
        with self.dep.store.write(lock=REGISTRY_LOCK) as conn:
            row = conn.execute(select(t.c.status).where(
                t.c.issuer_id == self.dep.issuer_id, t.c.kid == kid)).first()
            if row is None:
                raise NotFound(f"no key {kid!r}")
            if row.status == REVOKED:
                raise InputError(f"key {kid!r} is already revoked", reason="wrong_state")
            conn.execute(update(t).where(t.c.issuer_id == self.dep.issuer_id, t.c.kid == kid)
                         .values(status=REVOKED, revoked_at=to_epoch(now),
                                 compromised_at=to_epoch(compromised)))
            s = schema.signing_key_secrets  # nothing signs with a revoked key again
            conn.execute(delete(s).where(s.c.issuer_id == self.dep.issuer_id, s.c.kid == kid))
            self.dep.record(conn, events.KEY_REVOKED, now, kid=kid,
                            compromised_at=to_epoch(compromised))

    # --- agents -------------------------------------------------------------------------------

    def add_agent(self, agent_id: str, name: str, *, department: str | None = None,
                  names: dict[str, str] | None = None,
                  department_names: dict[str, str] | None = None,
                  now: datetime | None = None, api_key: str | None = None) -> Agent:
        """Register an agent; ``names`` / ``department_names`` give the name and the department
        in ``zh-Hant`` and ``zh-Hans`` (pages in a language without one show the given text).
        Raises :class:`InputError` if the id exists or a field is bad."""
        now = self.dep.now(now)
        agent = Agent(check_id(agent_id, "the agent id"), check_text(name, "the agent's name"),
                      check_text(department, "the department") if department else None, True,
                      _names(names, "the agent's name"),
                      _names(department_names, "the department"))
        if agent.department_names and agent.department is None:
            raise InputError("a department name in Chinese needs the department (--department)",
                             reason="bad_text")
        with self.dep.store.write(lock=REGISTRY_LOCK) as conn:
            inserted = self.dep.store.insert_if_absent(conn, schema.agents, {
                "issuer_id": self.dep.issuer_id, "agent_id": agent.agent_id,
                "name": agent.name, "department": agent.department, "enabled": True,
                "created_at": to_epoch(now), **_name_columns(agent)})
            if not inserted:
                raise InputError(f"agent {agent_id!r} already exists", reason="exists")
            self.dep.record(conn, events.AGENT_ADDED, now, agent_id=agent.agent_id,
                            name=agent.name, department=agent.department,
                            **_name_facts(agent), **events.by_api_key(api_key))
        return agent

    def set_agent(self, agent_id: str, *, name: str | None = None,
                  department: str | None = None, names: dict[str, str] | None = None,
                  department_names: dict[str, str] | None = None,
                  now: datetime | None = None, api_key: str | None = None) -> Agent:
        """Change an agent's name, department and their texts per language. None leaves a
        field as it is; an empty text removes a department or a name in one language (the
        given name then shows there). Tickets already issued keep the name they were signed
        with. Raises :class:`NotFound` for an unknown agent, :class:`InputError` for a bad
        field (nothing is changed then)."""
        now = self.dep.now(now)
        t = schema.agents
        with self.dep.store.write(lock=REGISTRY_LOCK) as conn:
            row = conn.execute(select(t).where(t.c.issuer_id == self.dep.issuer_id,
                                               t.c.agent_id == agent_id)).first()
            if row is None:
                raise NotFound(f"no agent {agent_id!r}")
            old = agent_from_row(row)
            new_department = old.department if department is None else (
                check_text(department, "the department") if department.strip() else None)
            merged_names = {**old.names, **_names(names, "the agent's name", clear=True)}
            merged_departments = {**old.department_names,
                                  **_names(department_names, "the department", clear=True)}
            agent = Agent(
                old.agent_id,
                old.name if name is None else check_text(name, "the agent's name"),
                new_department, old.enabled,
                {k: v for k, v in merged_names.items() if v},
                {k: v for k, v in merged_departments.items() if v} if new_department else {})
            if department_names and any(v.strip() for v in department_names.values()) \
                    and new_department is None:
                raise InputError("a department name in Chinese needs the department "
                                 "(--department)", reason="bad_text")
            if agent == old:
                return agent
            conn.execute(update(t).where(t.c.issuer_id == self.dep.issuer_id,
                                         t.c.agent_id == agent_id)
                         .values(name=agent.name, department=agent.department,
                                 **_name_columns(agent)))
            self.dep.record(conn, events.AGENT_CHANGED, now, agent_id=agent.agent_id,
                            name=agent.name, department=agent.department,
                            **_name_facts(agent), **events.by_api_key(api_key))
        return agent

    def set_agent_enabled(self, agent_id: str, enabled: bool, *,
                          now: datetime | None = None) -> None:
        """Stop an agent from being named on new tickets (``enabled=False``; their console
        sign-ins end at once) or allow them again. Raises :class:`NotFound` for an unknown
        agent."""
        self._set_enabled(schema.agents, "agent_id", agent_id, enabled, "agent",
                          events.AGENT_ENABLED if enabled else events.AGENT_DISABLED, now,
                          sign_ins="agent")

    def agents(self) -> list[Agent]:
        t = schema.agents
        with self.dep.store.read() as conn:
            rows = conn.execute(select(t).where(t.c.issuer_id == self.dep.issuer_id)
                                .order_by(t.c.agent_id)).all()
        return [agent_from_row(r) for r in rows]

    def agent(self, agent_id: str) -> Agent | None:
        """One agent of the registry, or None."""
        t = schema.agents
        with self.dep.store.read() as conn:
            row = conn.execute(select(t).where(t.c.issuer_id == self.dep.issuer_id,
                                               t.c.agent_id == agent_id)).first()
        return agent_from_row(row) if row is not None else None

    # --- reasons ------------------------------------------------------------------------------

    def add_reason(self, code: str, text: dict[str, str], *, now: datetime | None = None) -> Reason:
        """Add a catalogue reason with its text in en, zh-Hant and zh-Hans."""
        now = self.dep.now(now)
        missing = [lang for lang in LANGUAGES if not text.get(lang)]
        if missing:
            raise InputError(f"the reason needs text in {', '.join(missing)}", reason="bad_text")
        reason = Reason(check_id(code, "the reason code"),
                        {lang: check_text(text[lang], f"the {lang} text", 200)
                         for lang in LANGUAGES})
        with self.dep.store.write(lock=REGISTRY_LOCK) as conn:
            inserted = self.dep.store.insert_if_absent(conn, schema.reasons, {
                "issuer_id": self.dep.issuer_id, "code": reason.code,
                "text_en": reason.text["en"], "text_zh_hant": reason.text["zh-Hant"],
                "text_zh_hans": reason.text["zh-Hans"], "enabled": True})
            if not inserted:
                raise InputError(f"reason {code!r} already exists", reason="exists")
            self.dep.record(conn, events.REASON_ADDED, now, code=reason.code)
        return reason

    def set_reason_enabled(self, code: str, enabled: bool, *,
                           now: datetime | None = None) -> None:
        """Withdraw a reason from new calls (``enabled=False``) or offer it again. Tickets
        already issued with it keep it. Raises :class:`NotFound` for an unknown code."""
        self._set_enabled(schema.reasons, "code", code, enabled, "reason",
                          events.REASON_ENABLED if enabled else events.REASON_DISABLED, now)

    def _set_enabled(self, table: Table, key: str, value: str, enabled: bool, what: str,
                     event: str, now: datetime | None, *, sign_ins: str | None = None) -> None:
        """Set the ``enabled`` flag of the registry row whose ``key`` column is ``value``, and
        record ``event`` (naming ``key``) in the same transaction, so the log never tells of a
        change that did not happen. Disabling also ends that row's ``sign_ins`` kind of
        sign-ins there. Raises :class:`NotFound` ("no WHAT 'value'") when there is no row."""
        now = self.dep.now(now)
        with self.dep.store.write(lock=REGISTRY_LOCK) as conn:
            done = conn.execute(update(table).where(table.c.issuer_id == self.dep.issuer_id,
                                                    table.c[key] == value)
                                .values(enabled=enabled)).rowcount
            if not done:
                raise NotFound(f"no {what} {value!r}")
            if sign_ins is not None and not enabled:  # signed out everywhere, at once
                end_sign_ins(self.dep, conn, sign_ins, value)
            self.dep.record(conn, event, now, **{key: value})

    def reasons(self) -> list[Reason]:
        t = schema.reasons
        with self.dep.store.read() as conn:
            rows = conn.execute(select(t).where(t.c.issuer_id == self.dep.issuer_id)
                                .order_by(t.c.code)).all()
        return [reason_from_row(r) for r in rows]

    # --- customers ----------------------------------------------------------------------------

    def forget_customer(self, customer_ref: str, *, now: datetime | None = None) -> bool:
        """Delete the only link from ``customer_ref`` to its handle, and every proof the
        customer enrolled (sealed secrets, phrases, enrolment tokens). False if none existed."""
        now = self.dep.now(now)
        ref_hash = customer_ref_hash(self.dep, customer_ref)
        t = schema.customers
        with self.dep.store.write(lock=REGISTRY_LOCK) as conn:
            row = conn.execute(select(t.c.handle).where(t.c.issuer_id == self.dep.issuer_id,
                                                        t.c.ref_hash == ref_hash)).first()
            if row is not None:  # and everything sealed or pending for the customer
                forget_handle(conn, self.dep.issuer_id, row.handle)
            gone = conn.execute(delete(t).where(t.c.issuer_id == self.dep.issuer_id,
                                                t.c.ref_hash == ref_hash)).rowcount
            if gone:
                self.dep.record(conn, events.CUSTOMER_FORGOTTEN, now)
        return bool(gone)


def agent_from_row(row: Any) -> Agent:
    """An :class:`Agent` from an ``agents`` row."""
    return Agent(row.agent_id, row.name, row.department, bool(row.enabled),
                 {lang: text for lang in NAME_LANGUAGES
                  if (text := getattr(row, f"name_{_NAME_COLUMNS[lang]}", None))},
                 {lang: text for lang in NAME_LANGUAGES
                  if (text := getattr(row, f"department_{_NAME_COLUMNS[lang]}", None))})


def _names(given: dict[str, str] | None, what: str, *, clear: bool = False) -> dict[str, str]:
    """Checked texts per language (``zh-Hant``, ``zh-Hans``); with ``clear``, "" stays (it
    removes a text) and None drops out."""
    out: dict[str, str] = {}
    for lang, text in (given or {}).items():
        if lang not in NAME_LANGUAGES:
            raise InputError(f"{what} has texts in {', '.join(NAME_LANGUAGES)} only",
                             reason="bad_lang")
        if text is None:
            continue
        if clear and isinstance(text, str) and not text.strip():
            out[lang] = ""
        else:
            out[lang] = check_text(text, f"{what} in {lang}")
    return out


def _name_columns(agent: Agent) -> dict[str, str | None]:
    return {**{f"name_{c}": agent.names.get(lang) for lang, c in _NAME_COLUMNS.items()},
            **{f"department_{c}": agent.department_names.get(lang)
               for lang, c in _NAME_COLUMNS.items()}}


def _name_facts(agent: Agent) -> dict[str, Any]:
    """The names per language in an event, when there are any (older events have none)."""
    facts: dict[str, Any] = {}
    if agent.names:
        facts["names"] = dict(agent.names)
    if agent.department_names:
        facts["department_names"] = dict(agent.department_names)
    return facts


def reason_from_row(row: Any) -> Reason:
    return Reason(row.code, {"en": row.text_en, "zh-Hant": row.text_zh_hant,
                             "zh-Hans": row.text_zh_hans}, bool(row.enabled))


def handle_for(dep: Deployment, conn: Connection, customer_ref: str, now: datetime) -> str:
    """The customer's handle, made on first use (inside the caller's write transaction)."""
    from callproof.protocol.privacy import new_handle

    key = {"issuer": dep.issuer_id, "ref": customer_ref_hash(dep, customer_ref)}
    row = conn.execute(_HANDLE, key).first()
    if row is not None:
        return str(row.handle)
    # Two first calls to one customer at once: the primary key keeps one handle, both use it.
    dep.store.insert_if_absent(conn, schema.customers, {
        "issuer_id": key["issuer"], "ref_hash": key["ref"], "handle": new_handle(),
        "created_at": to_epoch(now)})
    return str(conn.execute(_HANDLE, key).scalar_one())


# Built once: issuing looks the customer up on every call that names one.
_HANDLE = select(schema.customers.c.handle).where(
    schema.customers.c.issuer_id == bindparam("issuer"),
    schema.customers.c.ref_hash == bindparam("ref"))




def import_key_file(dep: Deployment, conn: Connection, kid: str, now: datetime) -> SigningKey:
    """Read ``keys/<kid>.pem`` — where a data dir made before ADR 0011 keeps its signing key —
    and keep its private half in the database too (re-encrypted under the passphrase set now),
    inside the caller's write transaction. Raises :class:`ConfigError` when there is no such
    file or it holds another key."""
    path = dep.data_dir.key_file(kid)
    try:
        pem = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"the private key of the active key {kid} is missing: it is not in the "
                          f"database, nor in {path}") from e
    key = SigningKey.from_pem(pem, passphrase())
    if key.kid != kid:
        raise ConfigError(f"{path} does not hold the key {kid}")
    dep.store.insert_if_absent(conn, schema.signing_key_secrets, {
        "issuer_id": dep.issuer_id, "kid": kid, "pem": key.to_pem(passphrase()).decode("ascii"),
        "created_at": to_epoch(now)})
    return key


def customer_ref_hash(dep: Deployment, customer_ref: str) -> str:
    """The keyed hash a customer ref is stored as (surrounding spaces do not count)."""
    ref = customer_ref.strip() if isinstance(customer_ref, str) else ""
    if not ref or len(ref) > 256:
        raise InputError("the customer ref must be 1–256 characters", reason="bad_customer")
    return dep.hash_keys.customer_hash(dep.issuer_id, ref)
