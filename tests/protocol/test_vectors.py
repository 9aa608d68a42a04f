"""Published and spec vectors, replayed verbatim (spec/vectors/, ../shared/vectors/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from callproof import KeySet, TicketError, verify_ticket
from callproof.protocol.jws import b64url_decode, b64url_encode, sign_compact
from callproof.protocol.keys import SigningKey, jwk_thumbprint

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "spec/vectors/tickets.json").read_text("utf-8"))
NOW = datetime.fromtimestamp(VECTORS["now"], UTC)

# RFC 8037 appendix A (the RFC 8032 §7.1 test 1 key).
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
RFC8037_JWS = ("eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
               "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg")
# RFC 8032 §7.1 test 1: the empty message.
RFC8032_SIG = ("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac"
               "c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")


def test_rfc8037_a4_thumbprint() -> None:
    assert jwk_thumbprint(RFC8037_X) == RFC8037_THUMBPRINT


def test_rfc8037_a4_jws_framing_and_signature() -> None:
    key = SigningKey(Ed25519PrivateKey.from_private_bytes(b64url_decode(RFC8037_D)))
    assert key.x == RFC8037_X
    header, payload, _ = RFC8037_JWS.split(".")
    assert sign_compact(b64url_decode(header), b64url_decode(payload), key.sign) == RFC8037_JWS


def test_rfc8037_jws_is_refused_as_a_ticket_because_alg_is_polymorphic_eddsa() -> None:
    keys = KeySet.from_jwks({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}]})
    with pytest.raises(TicketError) as caught:
        verify_ticket(RFC8037_JWS, keys, now=NOW)
    assert caught.value.outcome == "bad_algorithm"


def test_rfc8032_test1_empty_message() -> None:
    key = SigningKey(Ed25519PrivateKey.from_private_bytes(b64url_decode(RFC8037_D)))
    assert key.sign(b"").hex() == RFC8032_SIG
    assert b64url_encode(bytes.fromhex(RFC8032_SIG))


def test_the_vector_file_is_what_the_generator_writes() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "spec/vectors/generate_tickets.py")],
                         check=True, capture_output=True, text=True).stdout
    assert json.loads(out) == VECTORS


@pytest.mark.parametrize("case", VECTORS["valid"], ids=lambda c: c["name"])
def test_valid_ticket_vectors_verify(case: dict[str, object]) -> None:
    ticket = verify_ticket(str(case["token"]), VECTORS["jwks"], now=NOW)
    claims = dict(case["claims"])  # type: ignore[call-overload]
    claims.pop("xyz", None)  # unknown claims are ignored, not returned
    assert ticket.to_claims() == claims


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=lambda c: c["name"])
def test_invalid_ticket_vectors_fail_with_their_outcome(case: dict[str, str]) -> None:
    with pytest.raises(TicketError) as caught:
        verify_ticket(case["token"], VECTORS["jwks"], now=NOW)
    assert caught.value.outcome == case["outcome"]
