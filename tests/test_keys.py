"""Signing keys at rest, and what an operator sees when a key or the database is unusable."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from callproof import ConfigError, Issuer, SigningKey, StoreError, init_data_dir
from callproof._cli import cli
from callproof.config import DataDir


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


def test_init_encrypts_keys_when_a_passphrase_is_set(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLPROOF_KEY_PASSPHRASE", "s3cret passphrase")
    report = init_data_dir(tmp_path / "d")
    assert not report.warnings
    [pem] = (tmp_path / "d/keys").glob("*.pem")
    for key in (pem, tmp_path / "d/keys/log.key"):  # the ticket key and the audit log's key
        assert key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        assert oct(key.stat().st_mode & 0o777) == "0o600"
    Issuer.open(tmp_path / "d").issue(agent_id="a-001", reason="payment_failed")
    monkeypatch.delenv("CALLPROOF_KEY_PASSPHRASE")
    with pytest.raises(ConfigError, match="CALLPROOF_KEY_PASSPHRASE"):
        Issuer.open(tmp_path / "d").issue(agent_id="a-001", reason="payment_failed")


def test_the_signing_key_can_come_from_the_environment(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    init_data_dir(tmp_path / "d")
    [pem_file] = (tmp_path / "d/keys").glob("*.pem")
    monkeypatch.setenv("CALLPROOF_SIGNING_KEY", pem_file.read_text())
    pem_file.unlink()
    call = Issuer.open(tmp_path / "d").issue(agent_id="a-001", reason="payment_failed")
    assert call.claims.kid == pem_file.stem


def test_a_missing_key_file_is_a_clear_error(tmp_path: Path) -> None:
    init_data_dir(tmp_path / "d")
    for pem in (tmp_path / "d/keys").iterdir():
        pem.unlink()
    with pytest.raises(ConfigError, match="private key .* is missing"):
        Issuer.open(tmp_path / "d").issue(agent_id="a-001", reason="payment_failed")


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
