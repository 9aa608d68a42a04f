"""`callproof verify --jwks FILE`: a JWKS names no issuer, so the issuer is given (`--issuer`) or
read from the document, and another issuer's ticket is refused (issue 13, item 13)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from callproof._cli import cli
from callproof.protocol.keys import SigningKey
from callproof.protocol.ticket import CallTicket, encode_ticket


def _ticket(key: SigningKey, iss: str) -> str:
    now = int(time.time())
    return encode_ticket(CallTicket(
        iss=iss, jti="t_cli_verify_0001", iat=now - 5, exp=now + 600, agent_id="a-001",
        agent_name="Mei Lin", reason="payment_failed",
        cdh=base64.urlsafe_b64encode(bytes(32)).decode("ascii").rstrip("=")), key)


@pytest.fixture
def platform(tmp_path: Path) -> tuple[SigningKey, Path]:
    """One key of a shop platform that signs for its merchants, published as a JWKS."""
    key = SigningKey.generate()
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [key.public_jwk()]}))
    return key, path


def _verify(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", "/nonexistent/callproof-data", "verify", *args])


def test_jwks_without_an_issuer_is_a_usage_error(platform: tuple[SigningKey, Path]) -> None:
    key, jwks = platform
    done = _verify(_ticket(key, "shop.example"), "--jwks", str(jwks))
    assert done.exit_code == 2 and "--jwks needs --issuer" in done.output


def test_another_issuers_ticket_is_wrong_issuer(platform: tuple[SigningKey, Path]) -> None:
    key, jwks = platform
    mine = _verify(_ticket(key, "shop.example"), "--jwks", str(jwks), "--issuer", "shop.example")
    assert mine.exit_code == 0, mine.output
    assert json.loads(mine.output)["iss"] == "shop.example"
    theirs = _verify(_ticket(key, "other-merchant.example"), "--jwks", str(jwks),
                     "--issuer", "shop.example")
    assert theirs.exit_code == 1
    outcome = json.loads(theirs.output)
    assert outcome["outcome"] == "wrong_issuer" and "other-merchant.example" in outcome["message"]


def test_the_issuer_may_come_from_the_jwks_document(platform: tuple[SigningKey, Path]) -> None:
    key, jwks = platform
    jwks.write_text(json.dumps({"issuer": "shop.example", "keys": [key.public_jwk()]}))
    assert _verify(_ticket(key, "shop.example"), "--jwks", str(jwks)).exit_code == 0
    theirs = _verify(_ticket(key, "other-merchant.example"), "--jwks", str(jwks))
    assert theirs.exit_code == 1 and json.loads(theirs.output)["outcome"] == "wrong_issuer"
    clash = _verify(_ticket(key, "shop.example"), "--jwks", str(jwks), "--issuer", "x.example")
    assert clash.exit_code == 2 and "not 'x.example''s" in clash.output
    jwks.write_text(json.dumps({"issuer": 7, "keys": [key.public_jwk()]}))
    assert _verify(_ticket(key, "shop.example"), "--jwks", str(jwks)).exit_code == 2
