"""`callproof enroll`, `reveal`, `call-status` and `coverage` through click's CliRunner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from callproof.proofs import totp as otp
from tests.proofs.otp_by_hand import key_of
from tests.proofs.otp_by_hand import totp as totp_by_hand

from ._helpers import Run, callproof_over, ok, refused

REF = "C-2002"


@pytest.fixture
def run(tmp_path: Path, backend: str) -> Run:
    return callproof_over(tmp_path / "data", backend)  # no CALLPROOF_SEAL_KEY: see _clean_env


def _secret(uri: str) -> str:
    return parse_qs(urlsplit(uri).query)["secret"][0]


def _code_now(secret: str) -> str:
    import time

    return totp_by_hand(key_of(secret), int(time.time()))


def _zbarimg() -> str:
    found = shutil.which("zbarimg")
    if found is None:
        reason = "zbarimg is not installed (apt-get install -y zbar-tools)"
        if os.environ.get("CALLPROOF_REQUIRE_BROWSER") == "1":
            pytest.fail(f"required here: {reason}")
        pytest.skip(reason)
    return found


def test_enrol_confirm_issue_connect_reveal(run: Run) -> None:
    out = json.loads(ok(run("enroll", "totp", "--customer", REF, "--json")).output)
    uri = out["otpauth_uri"]
    assert uri.startswith("otpauth://totp/Example%20Shop%20calls:") and REF not in uri
    assert out["status"] == "pending" and out["digits"] == 6
    secret = _secret(uri)
    refused(run("enroll", "confirm", "--customer", REF,
                "000000" if _code_now(secret) != "000000" else "111111"),
            "the code does not match")
    code = _code_now(secret)
    assert "app enrolment confirmed" in ok(run("enroll", "confirm", "--customer", REF,
                                               code)).output
    refused(run("enroll", "confirm", "--customer", REF, code), "this code was already used")
    ok(run("enroll", "phrase", "--customer", REF, input="blue heron at dawn\n"))

    call = json.loads(ok(run("issue", "--agent-id", "a-001", "--reason", "payment_failed",
                             "--customer", REF, "--json")).output)
    refused(run("reveal", call["ticket_id"], "--json"), "has not reported this call connected")
    ok(run("tickets", "connected", call["ticket_id"]))
    before = _code_now(secret)
    shown = json.loads(ok(run("reveal", call["ticket_id"], "--json")).output)
    assert {"app_code", "app_code_valid_for", "app_code_until", "phrase"} <= set(shown)
    assert shown["app_code"] in {before, _code_now(secret)}  # a step may end in between
    assert 1 <= shown["app_code_valid_for"] <= otp.PERIOD
    assert shown["phrase"] == "blue heron at dawn"
    text = ok(run("reveal", call["ticket_id"])).output
    assert "app code" in text and "phrase   blue heron at dawn" in text
    ok(run("reveal", call["ticket_id"], "--json"))
    refused(run("reveal", call["ticket_id"]), "the most allowed (3 an hour)")

    status = json.loads(ok(run("call-status", "--customer", REF)).output)
    assert status["calling"] is True and status["agent_name"] == "Mei Lin"
    assert json.loads(ok(run("call-status", "--customer", "C-none")).output) == {
        "calling": False}
    cover = json.loads(ok(run("coverage", "--json")).output)
    assert {"department": "Customer Care", "tickets": 1, "agents_issuing": 1,
            "agents": 1} in cover["departments"]

    assert "removed: app enrolment, phrase" in ok(run("enroll", "remove", "--customer",
                                                      REF)).output
    refused(run("enroll", "remove", "--customer", REF, "--phrase"), "nothing enrolled to remove")


def test_reveal_allow_unconnected_for_tests(run: Run) -> None:
    ok(run("enroll", "phrase", "--customer", REF, input="blue heron\n"))
    call = json.loads(ok(run("issue", "--agent-id", "a-001", "--reason", "payment_failed",
                             "--customer", REF, "--json")).output)
    shown = json.loads(ok(run("reveal", call["ticket_id"], "--allow-unconnected",
                              "--json")).output)
    assert shown == {"phrase": "blue heron"}


def test_the_terminal_shows_the_uri_and_a_qr_code(run: Run) -> None:
    out = ok(run("enroll", "totp", "--customer", REF)).output
    assert "otpauth://totp/Example%20Shop%20calls:Check%20incoming%20calls?secret=" in out
    assert "█" in out and "enroll confirm" in out


def test_phrase_rules_are_explained(run: Run) -> None:
    refused(run("enroll", "phrase", "--customer", REF, input="abc\n"), "too short")
    refused(run("enroll", "phrase", "--customer", REF, input="4111 1111 1111 1111\n"),
            "looks like a card number")
    refused(run("enroll", "phrase", "--customer", REF, input="12345678\n"), "only digits")
    refused(run("enroll", "phrase", "--customer", REF, input="x" * 65 + "\n"), "too long")


def test_a_bad_qr_suffix_is_a_usage_error(run: Run, tmp_path: Path) -> None:
    result = run("enroll", "totp", "--customer", REF, "--qr", str(tmp_path / "q.gif"))
    assert result.exit_code == 2 and ".png or .svg" in result.output


@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_qr_files_decode_to_the_exact_uri(run: Run, tmp_path: Path, suffix: str) -> None:
    zbarimg = _zbarimg()
    path = tmp_path / f"enrol.{suffix}"
    out = json.loads(ok(run("enroll", "totp", "--customer", REF, "--qr", str(path),
                            "--json")).output)
    assert out["qr_file"] == str(path)
    decoded = subprocess.run([zbarimg, "-q", "--raw", str(path)], capture_output=True,
                             text=True, timeout=60)
    if decoded.returncode != 0 and suffix == "svg":
        # zbarimg reads SVG only where ImageMagick has an SVG delegate: else rasterise it.
        png = _rasterise_svg(path, tmp_path / "enrol-svg.png")
        decoded = subprocess.run([zbarimg, "-q", "--raw", str(png)], capture_output=True,
                                 text=True, timeout=60)
    assert decoded.returncode == 0, decoded.stderr
    assert decoded.stdout.strip() == out["otpauth_uri"]


def _rasterise_svg(svg: Path, png: Path) -> Path:
    """Draw the SVG as a viewer would (Debian's rsvg-convert, from librsvg2-bin)."""
    found = shutil.which("rsvg-convert")
    if found is None:
        reason = "rsvg-convert is not installed (apt-get install -y librsvg2-bin)"
        if os.environ.get("CALLPROOF_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    subprocess.run([found, "--background-color=white", "--width=400", "-o", str(png), str(svg)],
                   check=True, timeout=60)
    return png
