"""Sealing: AES-256-GCM under the seal key, bound to the issuer, the handle and the purpose."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from callproof import init_data_dir
from callproof.config import DataDir
from callproof.errors import SealError
from callproof.sealing import Sealer, create_demo_seal_key, seal_key_file

KEY = bytes(range(32))


def test_round_trip_and_fresh_nonces() -> None:
    s = Sealer(KEY)
    a = s.seal(b"secret", issuer="shop.example", handle="h_1", purpose="totp")
    b = s.seal(b"secret", issuer="shop.example", handle="h_1", purpose="totp")
    assert a != b and a[:1] == b"\x01" and len(a) == 1 + 12 + len(b"secret") + 16
    assert s.open(a, issuer="shop.example", handle="h_1", purpose="totp") == b"secret"


@pytest.mark.parametrize("where", [
    {"issuer": "other.example", "handle": "h_1", "purpose": "totp"},
    {"issuer": "shop.example", "handle": "h_2", "purpose": "totp"},
    {"issuer": "shop.example", "handle": "h_1", "purpose": "phrase"},
])
def test_a_blob_moved_elsewhere_does_not_open(where: dict[str, str]) -> None:
    s = Sealer(KEY)
    blob = s.seal(b"secret", issuer="shop.example", handle="h_1", purpose="totp")
    with pytest.raises(SealError, match="does not open"):
        s.open(blob, **where)


def test_a_wrong_key_says_so_and_names_no_secret() -> None:
    blob = Sealer(KEY).seal(b"secret", issuer="i", handle="h", purpose="totp")
    with pytest.raises(SealError) as e:
        Sealer(os.urandom(32)).open(blob, issuer="i", handle="h", purpose="totp")
    assert "seal key is wrong" in str(e.value) and "secret" not in str(e.value).replace(
        "secrets/", "")
    with pytest.raises(SealError, match="malformed"):
        Sealer(KEY).open(b"\x02" + blob[1:], issuer="i", handle="h", purpose="totp")


def test_repr_hides_the_key() -> None:
    assert repr(Sealer(KEY)) == "Sealer(<hidden>)"


def test_key_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLPROOF_SEAL_KEY", base64.urlsafe_b64encode(KEY).decode().rstrip("="))
    blob = Sealer(KEY).seal(b"x", issuer="i", handle="h", purpose="p")
    assert Sealer.from_data_dir(DataDir(tmp_path)).open(blob, issuer="i", handle="h",
                                                        purpose="p") == b"x"
    monkeypatch.setenv("CALLPROOF_SEAL_KEY", "c2hvcnQ")
    with pytest.raises(SealError, match="CALLPROOF_SEAL_KEY must be the base64url of 32 bytes"):
        Sealer.from_data_dir(DataDir(tmp_path))
    monkeypatch.setenv("CALLPROOF_SEAL_KEY", "not base64 ***")
    with pytest.raises(SealError, match="not base64url"):
        Sealer.from_data_dir(DataDir(tmp_path))


def test_a_missing_key_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(SealError, match="no seal key: set CALLPROOF_SEAL_KEY"):
        Sealer.from_data_dir(DataDir(tmp_path))


def test_init_writes_a_demo_key_with_a_warning(tmp_path: Path) -> None:
    report = init_data_dir(tmp_path / "data")
    path = seal_key_file(DataDir(tmp_path / "data"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(path.read_bytes()) == 32
    assert any("CALLPROOF_SEAL_KEY is not set" in w for w in report.warnings)
    again = init_data_dir(tmp_path / "data")  # a second run keeps the key, quietly
    assert not any("SEAL" in w for w in again.warnings)


def test_no_demo_key_when_the_environment_has_one(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLPROOF_SEAL_KEY", base64.urlsafe_b64encode(KEY).decode())
    assert create_demo_seal_key(DataDir(tmp_path)) is None
    assert not seal_key_file(DataDir(tmp_path)).exists()


def test_no_demo_key_outside_demo_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLPROOF_KEY_PASSPHRASE", "a real passphrase")
    report = init_data_dir(tmp_path / "data")
    assert not seal_key_file(DataDir(tmp_path / "data")).exists() and not report.warnings
    with pytest.raises(SealError, match="no seal key: set CALLPROOF_SEAL_KEY"):
        Sealer.from_data_dir(DataDir(tmp_path / "data"))
