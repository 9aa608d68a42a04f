"""Scenario 9 — a stolen signing key.

A thief copies the company's ticket signing key (a PEM file off a badly kept backup). With it he
can sign tickets that any offline verifier holding the company's JWKS accepts — with any ``iat``
he likes. The company learns of it and, on the same data dir, while its servers keep serving,
runs ``callproof keys rotate`` (a new key signs from now on) and
``callproof keys revoke --compromised-at … -- KID``.

The mechanism: every server reads the keys from the database on every check, so a revoked key's
tickets stop confirming at once — including the live ones of genuine calls in progress, whose
customers get the safe failure page — and the served JWKS stops listing the key, so offline
verifiers that refresh it refuse the thief's forgeries. Tickets of the new key confirm. The audit
log keeps the old key's history: a bundle exported afterwards (``callproof audit export``) still
verifies with ``callproof audit verify`` and counts the old key's tickets logged before the
compromise time; one logged at or after it does not count, and the bundle says so.

The CLI runs in-process (click's runner) on the instance's data dir with its own connection to
the database, as a second process would; the served instance is never told.

Residual risk: genuine calls in progress when the key is revoked fail and must be placed again;
an offline verifier that caches the JWKS trusts the stolen key until its cache expires; and
signing alone gets the thief no confirmation on the check page (he would also need to write the
database and hold the hash key, A8).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner, Result
from sqlalchemy import select

from callproof import KeySet
from callproof._cli import cli
from callproof.errors import TicketError
from callproof.protocol.clock import iso, to_epoch
from callproof.protocol.codes import damm_digit
from callproof.protocol.keys import SigningKey
from callproof.protocol.ticket import CallTicket, encode_ticket, verify_ticket
from callproof.store import schema

from .conftest import Customer, Dialer, Instance


def _cli(instance: Instance, *args: str) -> Result:
    """The operator's command line on the instance's data dir (its own database connection)."""
    return CliRunner().invoke(cli, ["--data-dir", str(instance.path), *args])


def _kid(ticket: str) -> str:
    header = ticket.split(".")[0]
    kid: str = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    return kid


def _served_jwks(instance: Instance) -> KeySet:
    response = requests.get(f"{instance.url}/.well-known/callproof/jwks.json", timeout=30)
    assert response.status_code == 200
    return KeySet.from_jwks(response.json())


def _confirm(dialer: Dialer, customer: Customer, call: dict[str, object]) -> str:
    """The customer checks a call to the end; returns the kind of the last page."""
    page = customer.type_code(str(call["code_display"]))
    if page.kind != "number":
        return page.kind
    page = customer.answer_number(yes=True)
    if page.kind != "word":
        return page.kind
    return customer.tap_word(dialer.check_word(str(call["ticket_id"]))).kind


def _rotate_and_revoke(instance: Instance, old_kid: str, compromised_at: str) -> str:
    rotated = _cli(instance, "keys", "rotate")
    assert rotated.exit_code == 0, rotated.output
    new_kid = rotated.stdout.split()[-1]
    revoked = _cli(instance, "keys", "revoke", "--compromised-at", compromised_at, "--", old_kid)
    assert revoked.exit_code == 0 and revoked.stdout.strip() == f"revoked {old_kid}", \
        revoked.output
    return new_kid


def test_a_revoked_keys_live_tickets_stop_confirming_at_once_and_the_new_keys_confirm(
        instance: Instance) -> None:
    dialer = instance.dialer()
    in_progress, unchecked = dialer.issue(), dialer.issue()
    old_kid = _kid(str(in_progress["ticket"]))
    checking = instance.customer()
    assert checking.type_code(in_progress["code_display"]).kind == "number"

    instance.clock.advance(seconds=30)
    new_kid = _rotate_and_revoke(instance, old_kid, iso(instance.clock.now()))
    assert new_kid != old_kid

    # The running server, told nothing, refuses the old key's live tickets from the next request.
    assert checking.answer_number(yes=True).kind == "failed", "a check in progress ends"
    late = instance.customer().type_code(unchecked["code_display"])
    assert late.kind == "failed" and "We cannot confirm this call." in late.visible_text()
    official = instance.services().deployment.config.company.official_number
    assert official in late.visible_text()

    # The dialer carries on: its new tickets are signed by the new key and confirm.
    fresh = dialer.issue()
    assert _kid(str(fresh["ticket"])) == new_kid
    assert _confirm(dialer, instance.customer(), fresh) == "confirmed"
    # The keys as the operator lists them.
    listed = {k["kid"]: k for k in json.loads(_cli(instance, "keys", "list", "--json").stdout)}
    assert listed[old_kid]["status"] == "revoked" and "compromised_at" in listed[old_kid]
    assert listed[new_kid]["status"] == "active"


def test_the_thiefs_forgeries_verify_until_the_revocation_and_never_after(
        instance: Instance) -> None:
    dialer = instance.dialer()
    genuine = dialer.issue()
    old_kid = _kid(str(genuine["ticket"]))
    # What the thief walked away with: the PEM file of the active key.
    # What the thief walked away with: the active key's private half, which a demo deployment
    # keeps unencrypted in the database (ADR 0011).
    secrets = schema.signing_key_secrets
    with instance.services().deployment.store.read() as conn:
        pem = conn.execute(select(secrets.c.pem).where(secrets.c.kid == old_kid)).scalar_one()
    stolen = SigningKey.from_pem(pem.encode("ascii"), None)
    now = to_epoch(instance.clock.now())
    forged = encode_ticket(CallTicket(
        iss=instance.services().deployment.issuer_id, jti="t_forged0000000000000000",
        iat=now, exp=now + 900, agent_id="a-001", agent_name="Mei Lin",
        reason="payment_failed", cdh="A" * 43, dst="5678"), stolen)
    # The danger: before the revocation an offline verifier with the served JWKS accepts it.
    assert verify_ticket(forged, _served_jwks(instance), now=instance.clock.now()).jti == \
        "t_forged0000000000000000"
    # Nor can he use it on the check page: no code he can type leads to it.
    assert instance.customer().type_code("12345678" + damm_digit("12345678")).kind == "failed"

    _rotate_and_revoke(instance, old_kid, iso(instance.clock.now()))
    jwks = _served_jwks(instance)
    assert old_kid not in jwks, "the served JWKS no longer lists the stolen key"
    with pytest.raises(TicketError) as refused:
        verify_ticket(forged, jwks, now=instance.clock.now())
    assert refused.value.outcome == "unknown_key"
    # The operator's own check on the data dir names the revocation.
    checked = _cli(instance, "verify", forged)
    assert checked.exit_code == 1 and json.loads(checked.stdout)["outcome"] == "revoked"


def _export_and_verify(instance: Instance, out: Path, *extra: str) -> Result:
    exported = _cli(instance, "audit", "export", "--out", str(out))
    assert exported.exit_code == 0, exported.output
    vkey = _cli(instance, "audit", "vkey").stdout.strip()
    return CliRunner().invoke(cli, ["audit", "verify", str(out), "--log-key", vkey, *extra])


def test_an_audit_bundle_still_verifies_and_counts_the_old_keys_tickets_before_the_compromise(
        instance: Instance, tmp_path: Path) -> None:
    dialer = instance.dialer()
    first = dialer.issue()
    assert _confirm(dialer, instance.customer(), first) == "confirmed"
    second = dialer.issue()
    old_kid = _kid(str(first["ticket"]))
    before = tmp_path / "before"  # last week's bundle, kept by the auditor
    kept = _export_and_verify(instance, before)
    assert kept.exit_code == 0 and ", 2 tickets," in kept.stdout, kept.output

    instance.clock.advance(seconds=60)
    _rotate_and_revoke(instance, old_kid, iso(instance.clock.now()))
    assert _kid(str(dialer.issue()["ticket"])) != old_kid
    assert instance.customer().type_code(second["code_display"]).kind == "failed"

    after = tmp_path / "after"
    verdict = _export_and_verify(instance, after, "--previous", str(before / "checkpoint"))
    assert verdict.exit_code == 0, verdict.output
    assert verdict.stdout.startswith("OK: ") and ", 3 tickets," in verdict.stdout, \
        "both tickets of the revoked key, logged before its compromise, still count"
    listed = {k["kid"]: k for k in json.loads((after / "jwks.json").read_text())["keys"]}
    assert listed[old_kid]["status"] == "revoked" and "compromised_at" in listed[old_kid]
    # The bundle kept from before the revocation verifies as it did.
    assert CliRunner().invoke(cli, ["audit", "verify", str(before), "--log-key",
                                    (before / "log.vkey").read_text().strip()]).exit_code == 0


def test_an_old_key_ticket_logged_after_the_stated_compromise_does_not_count(
        instance: Instance, tmp_path: Path) -> None:
    """The operator learns the key leaked at 10:03; the company's own 10:05 ticket can no longer
    be told from a forgery, and the bundle names exactly that one."""
    dialer = instance.dialer()
    early = dialer.issue()
    instance.clock.advance(seconds=180)
    leaked_at = iso(instance.clock.now())
    instance.clock.advance(seconds=120)
    late = dialer.issue()
    instance.clock.advance(seconds=60)
    old_kid = _kid(str(early["ticket"]))
    _rotate_and_revoke(instance, old_kid, leaked_at)

    verdict = _export_and_verify(instance, tmp_path / "b")
    assert verdict.exit_code == 1
    failures = [line for line in verdict.stdout.splitlines() if line.startswith("FAILED: ")]
    assert len(failures) == 1, verdict.stdout
    assert f"ticket {late['ticket_id']}: signed by key {old_kid}, compromised at" in failures[0]
    assert "it does not count" in failures[0]
    assert str(early["ticket_id"]) not in verdict.stdout
