"""One deployment, many hosts (issue 11 item 4, ADR 0011): ticket keys live in the shared
database, the private half encrypted under CALLPROOF_KEY_PASSPHRASE, so `keys rotate` and
`keys revoke` on any host take effect on every instance at its next ticket, with no file copied.

Host A is made by `callproof init`; host B gets what the README's "Running several instances"
copies — config.toml, secrets/hash.key, keys/log.key — and no ticket key file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from callproof import (
    Admin,
    CheckFailed,
    CheckFlow,
    ConfigError,
    Issuer,
    init_data_dir,
    new_client_token,
)
from callproof.apikeys import ApiKeys
from callproof.deployment import Deployment
from callproof.protocol.jws import peek_unverified_header

from ._processes import CALLPROOF, callproof, free_port, wait_for

PASSPHRASE = "a long random passphrase shared by every host"
SEAL_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"  # base64url of 32 bytes


@dataclass
class Hosts:
    a: Path
    b: Path
    env: dict[str, str]  # what every host's environment holds


@pytest.fixture
def hosts(tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch) -> Hosts:
    url = backend or f"sqlite:///{tmp_path / 'shared.db'}"  # SQLite: one file, both "hosts"
    env = {"CALLPROOF_DATABASE_URL": url, "CALLPROOF_KEY_PASSPHRASE": PASSPHRASE,
           "CALLPROOF_SEAL_KEY": SEAL_KEY}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    a, b = tmp_path / "host-a", tmp_path / "host-b"
    init_data_dir(a)
    _join(a, b)
    return Hosts(a, b, env)


def _join(first: Path, second: Path, *, skip: tuple[str, ...] = ()) -> None:
    """Copy what a second host needs from the first (README: Running several instances)."""
    for name in ("config.toml", "secrets/hash.key", "keys/log.key"):
        if name not in skip:
            (second / name).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            shutil.copy2(first / name, second / name)


def _kid(token: str) -> str:
    header = peek_unverified_header(token)
    assert header is not None
    return str(header["kid"])


def test_a_rotation_or_revocation_on_one_instance_is_used_by_the_other(hosts: Hosts) -> None:
    dep_a, dep_b = Deployment.open(hosts.a), Deployment.open(hosts.b)
    try:
        issuer_a, issuer_b = Issuer(dep_a), Issuer(dep_b)
        assert list(hosts.b.glob("keys/*.pem")) == []  # B never had a key file
        [first] = [k.kid for k in Admin(dep_a).keys()]
        assert issuer_b.issue(agent_id="a-001", reason="payment_failed").claims.kid == first
        second = Admin(dep_a).rotate_key()  # on A
        # B signs with the new key from its very next ticket: nothing copied, nothing restarted.
        on_b = issuer_b.issue(agent_id="a-001", reason="payment_failed")
        assert on_b.claims.kid == second and _kid(on_b.ticket) == second
        # ... and A's customers can check it.
        flow_a, client = CheckFlow(dep_a), new_client_token()
        assert flow_a.lookup(on_b.code, client).ticket_id == on_b.ticket_id
        # A revocation on B: A stops signing at once, and B's live ticket no longer checks.
        late = issuer_b.issue(agent_id="a-002", reason="payment_failed")
        Admin(dep_b).revoke_key(second)
        with pytest.raises(ConfigError, match="no active signing key"):
            issuer_a.issue(agent_id="a-001", reason="payment_failed")
        with pytest.raises(CheckFailed):
            flow_a.lookup(late.code, new_client_token())
        third = Admin(dep_b).rotate_key()  # on B this time
        assert issuer_a.issue(agent_id="a-001", reason="payment_failed").claims.kid == third
    finally:
        dep_a.store.close()
        dep_b.store.close()


def test_init_on_a_second_host_makes_no_secret_of_its_own(hosts: Hosts,
                                                          tmp_path: Path) -> None:
    c = tmp_path / "host-c"
    _join(hosts.a, c, skip=("secrets/hash.key",))
    with pytest.raises(ConfigError, match=r"secrets/hash.key is missing here: copy it"):
        init_data_dir(c)
    assert not (c / "secrets/hash.key").exists()
    _join(hosts.a, c, skip=("keys/log.key",))
    (c / "keys/log.key").unlink()
    with pytest.raises(ConfigError, match=r"keys/log.key is missing here"):
        init_data_dir(c)
    _join(hosts.a, c)
    assert init_data_dir(c).created == []  # joined: nothing new, no key file
    assert list(c.glob("keys/*.pem")) == []


def _post(port: int, path: str, api_key: str, body: dict[str, str]) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - 127.0.0.1
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as e:
        with e:
            return int(e.code), json.loads(e.read())


@pytest.mark.slow
def test_keys_rotate_on_one_host_reaches_a_server_running_on_another(hosts: Hosts,
                                                                     tmp_path: Path) -> None:
    dep_a = Deployment.open(hosts.a)
    try:
        api_key, _ = ApiKeys(dep_a).create("dialer", scopes=["issue"])
        [first] = [k.kid for k in Admin(dep_a).keys()]
    finally:
        dep_a.store.close()
    port = free_port()
    ticket = {"agent_id": "a-001", "reason": "payment_failed"}
    with callproof(["--data-dir", str(hosts.b), "serve", "--port", str(port), "--workers", "1",
                    "--no-worker"], hosts.env, tmp_path / "serve-b.log") as server_b:
        wait_for("B listens", lambda: "Listening at" in server_b.output(), 30)
        status, body = _post(port, "/api/v1/tickets", api_key, ticket)
        assert status == 201 and _kid(body["ticket"]) == first

        def on_a(*args: str) -> str:
            return subprocess.run([*CALLPROOF, "--data-dir", str(hosts.a), *args],
                                  capture_output=True, text=True, timeout=60,
                                  check=True).stdout

        second = on_a("keys", "rotate").split()[-1]
        assert second != first

        def issued_with_second() -> bool:
            status, body = _post(port, "/api/v1/tickets", api_key, ticket)
            return status == 201 and _kid(body["ticket"]) == second

        took = wait_for("B issues with the key rotated on A", issued_with_second, 5, every=0.2)
        assert took < 1  # its next ticket already
        on_a("keys", "revoke", "--", second)
        status, body = _post(port, "/api/v1/tickets", api_key, ticket)
        assert status == 503 and body["error"] == "unavailable"  # no active key anywhere
        assert server_b.stop() == 0
        assert "Traceback" not in server_b.output() and PASSPHRASE not in server_b.output()
