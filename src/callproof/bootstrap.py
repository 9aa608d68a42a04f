"""`callproof init`: a data dir with a config, signing and log keys, a hash key, agents, reasons.

A second run keeps everything that is there. Without ``CALLPROOF_KEY_PASSPHRASE`` the signing key
is written unencrypted — fine for a demo on a laptop, never for production — and a warning says so.

    >>> created = init_data_dir("callproof-data")
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from callproof._files import create_key_file
from callproof.admin import Admin
from callproof.config import DEMO_CONFIG, DataDir, passphrase
from callproof.deployment import Deployment
from callproof.sealing import create_demo_seal_key

DEMO_COMPANY = {
    "issuer_id": "shop.example",
    "name": "Example Shop",
    "official_number": "+886 2 1234 5678",
    "check_page": "shop.example/call",
    "country": "TW",
    "hotline": "165",
}

DEMO_AGENTS = [
    ("a-001", "Mei Lin", "Customer Care"),
    ("a-002", "Chen Wei", "Billing"),
    ("a-003", "Sarah Wang", "Deliveries"),
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
    if not dd.exists():
        dd.config_file.write_text(DEMO_CONFIG.format(**DEMO_COMPANY), "utf-8")
        report.created.append("config.toml")
    if not os.environ.get("CALLPROOF_HASH_KEY") and not dd.hash_key_file.exists():
        dd.write_hash_key(os.urandom(32))
        report.created.append("secrets/hash.key")
    seal_warning = create_demo_seal_key(dd)  # unless CALLPROOF_SEAL_KEY is set
    if seal_warning:
        report.created.append("secrets/seal.key")
        report.warnings.append(seal_warning)
    if passphrase() is None and not any(dd.keys_dir.glob("*.pem")):
        report.warnings.append(
            "CALLPROOF_KEY_PASSPHRASE is not set: signing keys are stored UNENCRYPTED. "
            "Fine for a demo, never for real calls.")
    if not dd.log_key_file.exists():
        create_key_file(dd.log_key_file, passphrase())  # the audit log's note key
        report.created.append("log key keys/log.key")
    dep = Deployment.open(dd)
    try:
        admin = Admin(dep)
        if not admin.keys():
            report.created.append(f"signing key {admin.rotate_key(now)}")
        if demo:
            known = {a.agent_id for a in admin.agents()}
            for agent_id, name, department in DEMO_AGENTS:
                if agent_id not in known:
                    admin.add_agent(agent_id, name, department=department, now=now)
                    report.created.append(f"agent {agent_id}")
            codes = {r.code for r in admin.reasons()}
            for code, text in DEMO_REASONS.items():
                if code not in codes:
                    admin.add_reason(code, text, now=now)
                    report.created.append(f"reason {code}")
    finally:
        dep.store.close()
    return report
