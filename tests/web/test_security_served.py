"""Hardening (issue 13, items 2 and 8) against a real `callproof serve` with two gunicorn workers:
one owner for the per-client lookup limit — the library's, counted in the database, so the
workers do not each allow their own 30 — no client address in the limiter's Redis keys, and the
security log on stderr: structured lines with no secret, code, password or raw address."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from callproof import Deployment, Issuer, init_data_dir
from callproof.agent_auth import AgentPasswords
from callproof.protocol.codes import damm_digit
from tests._processes import Proc, callproof, free_port, wait_for

PASSWORD = "correct horse battery staple"  # noqa: S105 - a test password
WRONG = "not the password at all"


@dataclass
class Served:
    url: str
    proc: Proc
    data: Path

    def issue_code(self) -> str:
        dep = Deployment.open(self.data)
        try:
            return Issuer(dep).issue(agent_id="a-001", reason="payment_failed").code
        finally:
            dep.store.close()


class Browser:
    """A cookie-keeping client that opens a new connection per request (so that gunicorn's
    two workers both answer)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers["Connection"] = "close"

    def get(self, path: str) -> tuple[int, str]:
        response = self.session.get(self.base + path, timeout=20)
        return response.status_code, response.text

    def post(self, path: str, form: dict[str, str]) -> tuple[int, str]:
        page = self.get(path.rsplit("/", 1)[0] or "/")[1]
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        response = self.session.post(self.base + path, timeout=20, data={
            "csrf_token": token.group(1) if token else "", **form},
            headers={"Sec-Fetch-Site": "same-origin"})
        return response.status_code, response.text


def made_up_codes() -> Iterator[str]:
    n = 12_345_678
    while True:
        n = (n * 7 + 13) % 10**8
        yield f"{n:08d}" + damm_digit(f"{n:08d}")


def h1(html: str) -> str:
    found = re.search(r"<h1[^>]*>(.*?)</h1>", html, re.S)
    return re.sub(r"<[^>]+>|\s+", " ", found.group(1)).strip() if found else ""


@pytest.fixture
def served(tmp_path: Path, redis_url: str) -> Iterator[Served]:
    data = tmp_path / "data"
    init_data_dir(data)
    dep = Deployment.open(data)
    try:
        AgentPasswords(dep).set("a-001", PASSWORD)
    finally:
        dep.store.close()
    port = free_port()
    env = {"CALLPROOF_DATA_DIR": str(data), "CALLPROOF_RATELIMIT_STORAGE": redis_url,
           "HOME": str(tmp_path), "CALLPROOF_LOG_FORMAT": "json"}
    with callproof(["serve", "--workers", "2", "--port", str(port), "--no-worker"], env,
                   tmp_path / "serve.log") as proc:
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return requests.get(url + "/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for("callproof serve answers", up, 60)
        yield Served(url, proc, data)
        assert proc.stop() == 0


def test_two_workers_refuse_the_31st_failed_lookup_and_redis_holds_no_address(
        served: Served, redis_url: str) -> None:
    import redis

    browser = Browser(served.url)
    wrong = made_up_codes()
    for n in range(30):  # the documented 30 failed lookups, over both workers
        status, html = browser.post("/verify", {"code": next(wrong)})
        assert status == 200 and h1(html) == "We cannot confirm this call.", n
    # The 31st lookup — a genuine live code — is refused: one count for every worker (with a
    # per-worker count each of the two workers would allow 30, 60 in all).
    status, html = browser.post("/verify", {"code": served.issue_code()})
    assert h1(html) == "We cannot confirm this call."
    # A fresh client (a new cookie) on the same address is refused too: the address counts.
    assert h1(Browser(served.url).post("/verify", {"code": served.issue_code()})[1]) == \
        "We cannot confirm this call."

    # Sign-in failures and an API call with a made-up key leave Redis and the log clean.
    for _ in range(3):
        assert browser.post("/console/sign-in",
                            {"agent_id": "a-001", "password": WRONG})[0] == 400
    client = redis.Redis.from_url(redis_url)
    keys = [k.decode() for k in client.scan_iter(count=1000)]
    assert not [k for k in keys if "127.0.0.1" in k or "::1" in k]

    served.proc.stop()
    lines = [json.loads(line) for line in served.proc.output().splitlines()
             if line.startswith("{")]
    events = [line for line in lines if line.get("logger") == "callproof.security"]
    failed = [e for e in events if e["event"] == "sign_in.failed"]
    assert len(failed) == 3 and all(e["kind"] == "agent" and e["client"].startswith("h:")
                                    for e in failed)
    assert len({e["client"] for e in failed}) == 1  # one address, one keyed hash
    text = served.proc.output()
    assert not [line for line in lines if "127.0.0.1" in json.dumps(line)]
    assert WRONG not in text and "a-001" not in json.dumps(failed)


def test_the_security_log_names_sign_ins_sign_outs_and_api_key_use(
        served: Served) -> None:
    browser = Browser(served.url)
    status, _html = browser.post("/console/sign-in", {"agent_id": "a-001", "password": PASSWORD})
    assert status == 200  # followed to the console
    assert browser.post("/console/sign-out", {})[0] == 200
    refused = requests.post(served.url + "/api/v1/tickets", json={}, timeout=10,
                            headers={"Authorization": "Bearer cp_made_up_key"})
    assert refused.status_code == 401
    served.proc.stop()
    events = [json.loads(line) for line in served.proc.output().splitlines()
              if line.startswith("{") and '"callproof.security"' in line]
    names = [e["event"] for e in events]
    assert names == ["sign_in.ok", "sign_out", "api_key.refused"], names
    ok, out, api = events
    assert ok["user_id"] == "a-001" and out["user_id"] == "a-001"
    assert api["status"] == 401 and api["presented"] is True
    blob = served.proc.output()
    assert PASSWORD not in blob and "cp_made_up_key" not in blob
    ours = [line for line in blob.splitlines() if line.startswith("{")]  # gunicorn's aside
    assert ours and not [line for line in ours if "127.0.0.1" in line]
