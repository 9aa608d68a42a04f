"""`callproof init`: a data dir with a config, signing and log keys, a hash key, agents, reasons.

A second run keeps everything that is there, and copies a signing key still in a ``keys/<kid>.pem``
file into the database (ADR 0011). On a host joining a running deployment (its database already
holds the issuer's keys) init makes no secret: the hash, seal and log keys must be the first
host's, and a missing one is an error that says so. Without ``CALLPROOF_KEY_PASSPHRASE`` the
signing key is stored unencrypted — fine for a demo on a laptop, never for production — and a
warning says so.

    >>> created = init_data_dir("callproof-data")
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import select

from callproof._files import create_key_file
from callproof.admin import Admin
from callproof.config import DEMO_CONFIG, DataDir, passphrase
from callproof.deployment import Deployment
from callproof.errors import ConfigError
from callproof.sealing import (
    SESSION_ENV,
    create_demo_seal_key,
    seal_key_file,
    session_secret,
    session_secret_missing,
)
from callproof.store import Store, schema

DEMO_COMPANY = {
    "issuer_id": "shop.example",
    "name": "Example Shop",
    "official_number": "+886 2 1234 5678",
    "check_page": "shop.example/call",
    "country": "TW",
    "hotline": "165",
}


class DemoAgent(NamedTuple):
    """A demo agent, with the name and the department in zh-Hant and zh-Hans: the demo in
    Chinese names its caller in Chinese (issue 14, item 3)."""

    agent_id: str
    name: str
    department: str
    names: dict[str, str]
    department_names: dict[str, str]


DEMO_AGENTS = [
    DemoAgent("a-001", "Mei Lin", "Customer Care",
              {"zh-Hant": "林美玲", "zh-Hans": "林美玲"},
              {"zh-Hant": "客服部", "zh-Hans": "客服部"}),
    DemoAgent("a-002", "Chen Wei", "Billing",
              {"zh-Hant": "陳偉", "zh-Hans": "陈伟"},
              {"zh-Hant": "帳務部", "zh-Hans": "账务部"}),
    DemoAgent("a-003", "Sarah Wang", "Deliveries",
              {"zh-Hant": "王莎拉", "zh-Hans": "王莎拉"},
              {"zh-Hant": "配送部", "zh-Hans": "配送部"}),
]

DEMO_REASONS = {
    "order_delivery": {"en": "A question about the delivery of your order",
                       "zh-Hant": "關於您訂單的配送", "zh-Hans": "关于您订单的配送"},
    "payment_failed": {"en": "A payment for your order did not go through",
                       "zh-Hant": "您訂單的付款沒有成功", "zh-Hans": "您订单的付款没有成功"},
    "card_expiring": {"en": "The card saved in your account is about to expire",
                      "zh-Hant": "您帳戶中儲存的卡片即將到期",
                      "zh-Hans": "您账户中保存的卡片即将到期"},
    "return_pickup": {"en": "Arranging the pickup of your return",
                      "zh-Hant": "安排您退貨的取件", "zh-Hans": "安排您退货的取件"},
}


@dataclass
class InitReport:
    data_dir: Path
    created: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def init_data_dir(path: str | os.PathLike[str] | None = None, *, demo: bool = True,
                  now: datetime | None = None) -> InitReport:
    """Create what is missing in the data dir; keep what is there."""
    dd = DataDir(path)
    report = InitReport(dd.path)
    dd.path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(dd.path, 0o700)  # also when made over an existing folder: it holds keys and secrets
    for sub in ("keys", "secrets"):
        if (dd.path / sub).is_dir():
            os.chmod(dd.path / sub, 0o700)
    if not dd.exists():
        dd.config_file.write_text(DEMO_CONFIG.format(**DEMO_COMPANY), "utf-8")
        report.created.append("config.toml")
    if _joins_a_deployment(dd):  # a second host: its secrets are the first host's, never new
        _require_shared_secrets(dd)
    if not os.environ.get("CALLPROOF_HASH_KEY") and not dd.hash_key_file.exists():
        dd.write_hash_key(os.urandom(32))
        report.created.append("secrets/hash.key")
    seal_warning = create_demo_seal_key(dd)  # unless CALLPROOF_SEAL_KEY is set
    if seal_warning:
        report.created.append("secrets/seal.key")
        report.warnings.append(seal_warning)
    if not dd.log_key_file.exists():
        create_key_file(dd.log_key_file, passphrase())  # the audit log's note key
        report.created.append("log key keys/log.key")
    dep = Deployment.open(dd)
    try:
        if not os.environ.get(SESSION_ENV) and session_secret_missing(dep):
            session_secret(dep)  # one secret for sessions, apart from the hash key
            report.created.append("session secret (in the database)")
        admin = Admin(dep)
        if not admin.keys():
            if passphrase() is None:
                report.warnings.append(
                    "CALLPROOF_KEY_PASSPHRASE is not set: signing keys are stored UNENCRYPTED "
                    "(in the database and keys/log.key). Fine for a demo, never for real calls.")
            report.created.append(f"signing key {admin.rotate_key(now)}")
        else:  # a data dir from before ADR 0011: its key file goes into the database
            report.created += [f"signing key {kid} copied into the database"
                               for kid in admin.import_key_files(now)]
        if demo:
            known = {a.agent_id for a in admin.agents()}
            for agent in DEMO_AGENTS:
                if agent.agent_id not in known:
                    admin.add_agent(agent.agent_id, agent.name, department=agent.department,
                                    names=agent.names, department_names=agent.department_names,
                                    now=now)
                    report.created.append(f"agent {agent.agent_id}")
            codes = {r.code for r in admin.reasons()}
            for code, text in DEMO_REASONS.items():
                if code not in codes:
                    admin.add_reason(code, text, now=now)
                    report.created.append(f"reason {code}")
    finally:
        dep.store.close()
    return report


def _joins_a_deployment(dd: DataDir) -> bool:
    """The data dir's config names a database that already holds its issuer's signing keys:
    this host joins a running deployment (or re-runs init on the first one)."""
    if not dd.exists():
        return False
    config = dd.load()
    store = Store.open(config.database_url)
    try:
        with store.read() as conn:
            t = schema.signing_keys
            return conn.execute(select(t.c.kid).where(t.c.issuer_id == config.issuer_id)
                                .limit(1)).first() is not None
    finally:
        store.close()


def _require_shared_secrets(dd: DataDir) -> None:
    """Refuse to make a secret that the deployment's database already depends on: a new hash
    key, seal key or log key on a second host would split the deployment in two."""
    missing = [(what, how) for what, how, present in (
        ("secrets/hash.key", "CALLPROOF_HASH_KEY",
         os.environ.get("CALLPROOF_HASH_KEY") or dd.hash_key_file.exists()),
        ("secrets/seal.key", "CALLPROOF_SEAL_KEY",
         os.environ.get("CALLPROOF_SEAL_KEY") or passphrase() is not None
         or seal_key_file(dd).exists()),
        ("keys/log.key", "", dd.log_key_file.exists()),
    ) if not present]
    if missing:
        what, how = missing[0]
        raise ConfigError(
            f"the database of {dd.path} already holds a deployment, but {what} is missing here: "
            f"copy it from the first host{f' (or set {how})' if how else ''}. `callproof init` "
            "makes secrets only for a new deployment (README: Running several instances).")
