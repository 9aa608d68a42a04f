"""The `callproof` command line, through the interfaces integrators and operators script against."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from joserfc import jwt
from joserfc.jwk import KeySet as JoseKeySet

from callproof._cli import cli
from callproof.agent_auth import AgentPasswords
from callproof.deployment import Deployment

from ._helpers import Run, callproof_over, ok


@pytest.fixture
def run(tmp_path: Path, backend: str) -> Run:
    return callproof_over(tmp_path / "data", backend)


def test_init_creates_the_data_dir_and_a_second_run_keeps_it(tmp_path: Path) -> None:
    env = {"CALLPROOF_DATA_DIR": str(tmp_path / "d")}
    first = CliRunner().invoke(cli, ["init"], env=env)
    assert first.exit_code == 0 and "signing key" in first.output
    assert "UNENCRYPTED" in first.output  # the demo warning (stderr is mixed in)
    key_files = sorted((tmp_path / "d/keys").iterdir())
    hash_key = (tmp_path / "d/secrets/hash.key").read_bytes()
    second = CliRunner().invoke(cli, ["init"], env=env)
    assert second.exit_code == 0 and "nothing changed" in second.output
    assert sorted((tmp_path / "d/keys").iterdir()) == key_files
    assert (tmp_path / "d/secrets/hash.key").read_bytes() == hash_key
    assert oct((tmp_path / "d/secrets/hash.key").stat().st_mode & 0o777) == "0o600"


def test_issue_prints_the_ticket_and_code_as_json(run: Run) -> None:
    out = json.loads(ok(run("issue", "--agent-id", "a-001", "--reason", "payment_failed",
                            "--customer", "C-1001", "--phone", "+886912345678",
                            "--json")).output)
    assert set(out) >= {"ticket_id", "ticket", "code", "code_display", "expires_at"}
    assert re.fullmatch(r"[0-9]{9}", out["code"])
    assert out["code_display"] == f"{out['code'][:3]} {out['code'][3:6]} {out['code'][6:]}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", out["expires_at"])


@pytest.mark.parametrize("args,message", [
    (["--agent-id", "ghost", "--reason", "payment_failed"], "no agent 'ghost'"),
    (["--agent-id", "a-001", "--reason", "we said so"], "no reason"),
    (["--agent-id", "a-001", "--reason", "payment_failed", "--phone", "12"], "E.164"),
    (["--agent-id", "a-001", "--reason", "payment_failed", "--ttl", "3600"], "lifetime"),
], ids=["unknown-agent", "unknown-reason", "bad-phone", "too-long"])
def test_issue_refuses_with_one_clear_line(run: Run, args: list[str], message: str) -> None:
    result = run("issue", *args, "--json")
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_agents_and_reasons(run: Run) -> None:
    ok(run("agents", "add", "a-100", "Li Hua", "--department", "Returns"))
    agents = json.loads(ok(run("agents", "list", "--json")).output)
    added = next(a for a in agents if a["id"] == "a-100")
    assert {"id": "a-100", "name": "Li Hua", "department": "Returns",
            "enabled": True}.items() <= added.items()
    assert run("agents", "add", "a-100", "Again").exit_code != 0
    ok(run("agents", "disable", "a-100"))
    refused = run("issue", "--agent-id", "a-100", "--reason", "payment_failed")
    assert refused.exit_code != 0 and "disabled" in refused.output
    reasons = json.loads(ok(run("reasons", "list", "--json")).output)
    assert reasons and all(set(r["text"]) == {"en", "zh-Hant", "zh-Hans"} for r in reasons)
    assert {"code", "text", "enabled"} == set(reasons[0])


def test_agent_passwords_from_stdin_or_the_prompt_typed_twice(run: Run, tmp_path: Path) -> None:
    # A password piped from a Windows file ends in CRLF: the line ending is not part of it.
    ok(run("agents", "set-password", "a-001", "--password-stdin",
           input="a long console password\r\n"))
    ok(run("agents", "set-password", "a-002", input="another long password\n" * 2))
    mismatch = run("agents", "set-password", "a-002",
                   input="a third long password\nsomething else\n")
    assert mismatch.exit_code != 0 and "do not match" in mismatch.output.lower()
    short = run("agents", "set-password", "a-001", "--password-stdin", input="short\n")
    assert short.exit_code == 1 and "12–1024 characters" in short.output
    dep = Deployment.open(tmp_path / "data")
    try:
        passwords = AgentPasswords(dep)
        assert passwords.check("a-001", "a long console password")
        assert passwords.check("a-002", "another long password")
    finally:
        dep.store.close()


def test_jwks_and_verify_and_joserfc_agree(run: Run) -> None:
    out = json.loads(ok(run("issue", "--agent-id", "a-001", "--reason",
                            "payment_failed", "--json")).output)
    jwks = json.loads(ok(run("keys", "jwks")).output)
    assert [set(k) for k in jwks["keys"]] == [{"kty", "crv", "x", "kid", "use", "alg"}]
    assert jwks["keys"][0]["alg"] == "Ed25519"
    claims = json.loads(ok(run("verify", out["ticket"])).output)
    assert claims["jti"] == out["ticket_id"]
    decoded = jwt.decode(out["ticket"], JoseKeySet.import_key_set(jwks), algorithms=["Ed25519"])
    assert decoded.claims == claims


def test_verify_prints_the_outcome_and_fails(run: Run) -> None:
    out = json.loads(ok(run("issue", "--agent-id", "a-001", "--reason",
                            "payment_failed", "--json")).output)
    head, payload, sig = out["ticket"].split(".")
    bad = f"{head}.{payload}.{'A' * 85}A"
    for token, outcome in ((bad, "bad_signature"), ("nonsense", "malformed"),
                           (out["ticket"] + "x" * 5000, "too_large")):
        result = run("verify", token)
        assert result.exit_code == 1 and json.loads(result.output)["outcome"] == outcome


def test_rotate_then_revoke(run: Run) -> None:
    out = json.loads(ok(run("issue", "--agent-id", "a-001", "--reason",
                            "payment_failed", "--json")).output)
    old = json.loads(ok(run("keys", "list", "--json")).output)[0]["kid"]
    ok(run("keys", "rotate"))
    keys = {k["kid"]: k["status"] for k in json.loads(ok(run("keys", "list", "--json")).output)}
    assert keys[old] == "retired" and list(keys.values()).count("active") == 1
    ok(run("verify", out["ticket"]))
    ok(run("keys", "revoke", "--", old))  # a kid may start with "-"
    result = run("verify", out["ticket"])
    assert result.exit_code == 1 and json.loads(result.output)["outcome"] == "revoked"
    assert old not in ok(run("keys", "jwks")).output
    assert run("keys", "revoke", "--", old).exit_code == 1
    assert run("keys", "revoke", "no-such-kid").exit_code == 1


def test_check_code_is_read_only(run: Run) -> None:
    out = json.loads(ok(run("issue", "--agent-id", "a-001", "--reason",
                            "payment_failed", "--phone", "+886912345678", "--json")).output)
    for _ in range(2):
        report = json.loads(ok(run("check-code", out["code_display"], "--json")).output)
        assert report["outcome"] == "valid" and report["state"] == "issued"
        assert report["agent"]["name"] == "Mei Lin" and report["hint"] == "5678"
    typo = out["code"][:-1] + str((int(out["code"][-1]) + 1) % 10)
    mistyped = run("check-code", typo, "--json")  # bad input: the report, and exit 1
    assert mistyped.exit_code == 1 and json.loads(mistyped.stdout) == {"outcome": "typo"}
    ok(run("tickets", "close", out["ticket_id"]))
    report = json.loads(ok(run("check-code", out["code"], "--json")).output)
    assert report["outcome"] == "closed"
    assert json.loads(ok(run("check-code", "000000000", "--json")).output)["outcome"] \
        == "not_found"


def test_tickets_status_and_dialer_reports(run: Run) -> None:
    out = json.loads(ok(run("issue", "--agent-id", "a-001", "--reason",
                            "payment_failed", "--json")).output)
    assert "connected" in ok(run("tickets", "connected", out["ticket_id"])).output
    status = json.loads(ok(run("tickets", "status", out["ticket_id"], "--json")).output)
    assert status["state"] == "connected" and "check_word" not in status
    ok(run("tickets", "close", out["ticket_id"]))
    again = run("tickets", "close", out["ticket_id"])
    assert again.exit_code == 1 and "already closed" in again.output
    assert run("tickets", "status", "t_nope").exit_code == 1


def test_customers_forget(run: Run) -> None:
    ok(run("issue", "--agent-id", "a-001", "--reason", "payment_failed",
           "--customer", "C-77"))
    ok(run("customers", "forget", "C-77"))
    assert run("customers", "forget", "C-77").exit_code == 1


def test_errors_without_a_data_dir_are_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "none"), "keys", "jwks"])
    assert result.exit_code == 1 and "callproof init" in result.output


def test_every_command_has_help() -> None:
    for args in (["--help"], ["keys", "--help"], ["keys", "revoke", "--help"],
                 ["agents", "add", "--help"], ["reasons", "list", "--help"],
                 ["issue", "--help"], ["verify", "--help"], ["check-code", "--help"],
                 ["customers", "forget", "--help"], ["tickets", "close", "--help"],
                 ["demo", "--help"], ["init", "--help"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0 and "Usage:" in result.output


def test_the_installed_program_runs_the_demo_and_serves_the_page(tmp_path: Path) -> None:
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("callproof")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "callproof"]
    env = {**os.environ, "CALLPROOF_DATA_DIR": str(tmp_path / "demo")}
    env.pop("CALLPROOF_DATABASE_URL", None)
    server = subprocess.Popen([*cmd, "demo", "--port", str(port)], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lines = []
        assert server.stdout is not None
        for line in server.stdout:
            lines.append(line)
            if line.startswith("Serving on"):
                break
        out = "".join(lines)
        code = re.search(r"\b(\d{3} \d{3} \d{3})\b", out)
        assert code is not None and f"http://127.0.0.1:{port}/console/" in out
        assert re.search(r"agent id a-001, password \S{12,}", out)
        for _ in range(100):
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
                break
            except OSError:
                time.sleep(0.1)
        assert "Is Example Shop calling you right now?" in page.decode()
        check = subprocess.run([*cmd, "check-code", code.group(1), "--json"], env=env,
                               capture_output=True, text=True, timeout=60, check=True)
        assert json.loads(check.stdout)["outcome"] == "valid"
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stdout:
            server.stdout.close()
        if server.stderr:
            server.stderr.close()


def test_the_lazy_command_table_says_what_each_command_says() -> None:
    """`callproof --help` reads short help from a table so no command module loads; the table
    must name each command and say exactly what its docstring says."""
    import click

    from callproof._cli import _COMMANDS, cli

    ctx = click.Context(cli)
    for name, lazy in _COMMANDS.items():
        cmd = cli.get_command(ctx, name)
        assert cmd is not None and cmd.name == name
        assert (cmd.help or "").split("\n\n")[0] == lazy.help
