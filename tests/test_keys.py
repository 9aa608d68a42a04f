"""Signing keys at rest (the active key's private half in the database, ADR 0011), and what an
operator sees when a key or the database is unusable."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select

from callproof import Admin, ConfigError, Issuer, SigningKey, StoreError, init_data_dir
from callproof._cli import cli
from callproof.config import DataDir
from callproof.deployment import Deployment
from callproof.store import schema


def test_pem_round_trip_with_a_passphrase() -> None:
    key = SigningKey.generate()
    pem = key.to_pem(b"correct horse")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert SigningKey.from_pem(pem, b"correct horse").kid == key.kid


@pytest.mark.parametrize("stored,given,message", [
    (b"right", b"wrong", "wrong passphrase"),
    (b"right", None, "CALLPROOF_KEY_PASSPHRASE"),
    (None, b"something", "not encrypted"),
], ids=["wrong", "missing", "unexpected"])
def test_a_key_that_cannot_be_opened_says_why(stored: bytes | None, given: bytes | None,
                                              message: str) -> None:
    pem = SigningKey.generate().to_pem(stored)
    with pytest.raises(ConfigError, match=message):
        SigningKey.from_pem(pem, given)


def _secrets(path: Path) -> dict[str, str]:
    """The private halves of the signing keys as the database keeps them (ADR 0011)."""
    dep = Deployment.open(path)
    try:
        with dep.store.read() as conn:
            t = schema.signing_key_secrets
            return {r.kid: r.pem for r in conn.execute(select(t.c.kid, t.c.pem))}
    finally:
        dep.store.close()


def _forget_secrets(path: Path) -> None:
    dep = Deployment.open(path)
    try:
        with dep.store.write() as conn:
            conn.execute(delete(schema.signing_key_secrets))
    finally:
        dep.store.close()


def test_init_encrypts_keys_when_a_passphrase_is_set(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLPROOF_KEY_PASSPHRASE", "s3cret passphrase")
    report = init_data_dir(tmp_path / "d")
    assert not report.warnings
    # The ticket key lives in the database (every instance finds it there), encrypted; no file.
    [(kid, pem)] = _secrets(tmp_path / "d").items()
    assert pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert list((tmp_path / "d/keys").glob("*.pem")) == []
    log_key = tmp_path / "d/keys/log.key"  # the audit log's key is still a file
    assert log_key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert oct(log_key.stat().st_mode & 0o777) == "0o600"
    assert Issuer.open(tmp_path / "d").issue(agent_id="a-001",
                                             reason="payment_failed").claims.kid == kid
    monkeypatch.delenv("CALLPROOF_KEY_PASSPHRASE")
    with pytest.raises(ConfigError, match="CALLPROOF_KEY_PASSPHRASE"):
        Issuer.open(tmp_path / "d").issue(agent_id="a-001", reason="payment_failed")
    # Nor can a host without the passphrase rotate in a key stored in clear beside it.
    with pytest.raises(ConfigError, match="CALLPROOF_KEY_PASSPHRASE"):
        Admin(Deployment.open(tmp_path / "d")).rotate_key()
    assert list(_secrets(tmp_path / "d")) == [kid]


def test_the_signing_key_can_come_from_the_environment(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    init_data_dir(tmp_path / "d")
    [(kid, pem)] = _secrets(tmp_path / "d").items()
    monkeypatch.setenv("CALLPROOF_SIGNING_KEY", pem)
    _forget_secrets(tmp_path / "d")
    call = Issuer.open(tmp_path / "d").issue(agent_id="a-001", reason="payment_failed")
    assert call.claims.kid == kid


def test_a_missing_private_key_is_a_clear_error(tmp_path: Path) -> None:
    init_data_dir(tmp_path / "d")
    _forget_secrets(tmp_path / "d")
    with pytest.raises(ConfigError, match="private key of the active key .* is missing"):
        Issuer.open(tmp_path / "d").issue(agent_id="a-001", reason="payment_failed")


def test_a_data_dir_from_before_keys_moved_into_the_database_keeps_working(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Older data dirs keep the active key in keys/<kid>.pem: it is read, and copied into the
    database on its first use (or by `callproof init`), so other instances find it."""
    monkeypatch.setenv("CALLPROOF_KEY_PASSPHRASE", "s3cret passphrase")
    for how in ("issue", "init"):
        path = tmp_path / how
        init_data_dir(path)
        [(kid, pem)] = _secrets(path).items()
        (path / "keys" / f"{kid}.pem").write_text(pem)  # where older versions kept it
        _forget_secrets(path)
        if how == "issue":
            assert Issuer.open(path).issue(agent_id="a-001",
                                           reason="payment_failed").claims.kid == kid
        else:
            assert f"signing key {kid} copied into the database" in init_data_dir(path).created
        assert list(_secrets(path)) == [kid]
        (path / "keys" / f"{kid}.pem").unlink()  # the database's copy is enough from now on
        assert Issuer.open(path).issue(agent_id="a-001",
                                       reason="payment_failed").claims.kid == kid


def test_only_the_active_key_has_a_private_half_in_the_database(tmp_path: Path) -> None:
    init_data_dir(tmp_path / "d")
    [first] = _secrets(tmp_path / "d")
    admin = Admin(Deployment.open(tmp_path / "d"))
    second = admin.rotate_key()
    assert list(_secrets(tmp_path / "d")) == [second]  # a retired key never signs again
    admin.revoke_key(second)
    assert _secrets(tmp_path / "d") == {}
    assert {k.kid: k.status for k in admin.keys()} == {first: "retired", second: "revoked"}
    admin.dep.store.close()


def test_a_database_that_is_down_is_one_line_and_a_non_zero_exit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init_data_dir(tmp_path / "d")
    monkeypatch.setenv("CALLPROOF_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:9/none")
    with pytest.raises(StoreError):
        Issuer.open(tmp_path / "d")
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "d"), "issue",
                                      "--agent-id", "a-001", "--reason", "payment_failed"])
    assert result.exit_code == 1
    assert "database" in result.output and "Traceback" not in result.output


COMPANY = '[company]\nname = "A"\nofficial_number = "1"\ncheck_page = "a.example/call"\n'


@pytest.mark.parametrize("config,message", [
    ("issuer_id = 1\n", "issuer_id"),
    (f'issuer_id = "x"\n{COMPANY}[limits]\nword_choices = 9\n', "word_choices"),
    (f'issuer_id = "x"\n{COMPANY}[limits]\nmax_ttl_seconds = 7200\n', "lifetimes"),
    (f'issuer_id = "x"\n{COMPANY}[limits]\nbogus = 1\n', "unknown setting"),
    ('issuer_id = "x"\n[company]\nname = "A"\n', "needs official_number, check_page"),
    ("not toml at all [", "config.toml"),
], ids=["issuer-not-string", "too-many-choices", "lifetime-over-max", "unknown", "missing",
        "not-toml"])
def test_a_bad_config_names_the_problem(tmp_path: Path, config: str, message: str) -> None:
    (tmp_path / "config.toml").write_text(config)
    with pytest.raises(ConfigError, match=message):
        DataDir(tmp_path).load()


def test_a_data_dir_made_over_an_existing_folder_is_private(tmp_path: Path) -> None:
    """Hardening item 10: the database, its WAL, keys and secrets are the owner's alone, even
    when `init` runs in a folder that already existed with a permissive mode and umask."""
    import os
    import stat

    from callproof import init_data_dir
    from callproof.issuer import Issuer

    data = tmp_path / "existing"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)  # noqa: S103 - the permissive folder the test starts from
    old = os.umask(0o022)
    try:
        init_data_dir(data)
        Issuer.open(data).issue(agent_id="a-001", reason="payment_failed")  # the WAL exists now
    finally:
        os.umask(old)

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(data) == 0o700
    for name in ("callproof.db", "callproof.db-wal", "callproof.db-shm", "keys/log.key",
                 "secrets/hash.key"):
        assert mode(data / name) == 0o600, name
    for name in ("keys", "secrets"):
        assert mode(data / name) == 0o700, name
