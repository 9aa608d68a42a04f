"""`callproof audit verify`, `verify-proof` and `report` as an auditor runs them: an unpinned log
key is not a pass (issue 13, item 11), and signed notes are read as Go reads them (item 12)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from callproof._cli import cli
from callproof.tlog import merkle, note
from callproof.tlog.proof import format_tlog_proof
from fuzz import _targets as T

CORPUS = Path(__file__).resolve().parents[2] / "fuzz" / "corpus"


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def fabricated(tmp_path: Path) -> Path:
    """A bundle someone made with keys of their own — ticket keys, log key and its log.vkey —
    that agrees with itself perfectly: two calls, a signed checkpoint, witness cosignatures."""
    parts = (CORPUS / "bundle" / "seed-bundle-calls").read_bytes().split(T.SEPARATOR)
    out = tmp_path / "bundle"
    out.mkdir()
    for name, content in zip(T.BUNDLE_FILES, parts, strict=False):
        (out / name).write_bytes(content)
    return out


def _vkey(bundle: Path) -> str:
    """The key the bundle was made with, as if its maker had published it."""
    return (bundle / "log.vkey").read_text("utf-8").strip()


def test_verify_without_a_pinned_key_fails_and_says_why(fabricated: Path) -> None:
    done = _run("audit", "verify", str(fabricated))
    assert done.exit_code == 1, done.output
    assert "FAILED: no log key was pinned (--log-key)" in done.output
    assert "OK:" not in done.output


def test_trust_bundle_key_accepts_it_with_a_warning(fabricated: Path) -> None:
    done = _run("audit", "verify", str(fabricated), "--trust-bundle-key")
    assert done.exit_code == 0, done.output
    assert "warning: no log key was pinned" in done.stderr
    assert re.search(r"^OK: .*NOT pinned", done.stdout, re.M), done.stdout
    both = _run("audit", "verify", str(fabricated), "--trust-bundle-key", "--log-key",
                _vkey(fabricated))
    assert both.exit_code == 2 and "give one of them" in both.output


def test_with_the_pinned_key_it_verifies(fabricated: Path) -> None:
    done = _run("audit", "verify", str(fabricated), "--log-key", _vkey(fabricated))
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith("OK: ") and "NOT pinned" not in done.stdout
    name = _vkey(fabricated).split("+")[0]
    other = note.Signer.generate(name).verifier().to_vkey()  # the company's real key
    refused = _run("audit", "verify", str(fabricated), "--log-key", other)
    assert refused.exit_code == 1 and "not signed by the pinned log key" in refused.output


def _verdict(html: str) -> str:
    found = re.search(r'<section aria-labelledby="h-verdict">(.*?)</section>', html, re.S)
    assert found
    return found.group(1)


def test_report_without_a_pinned_key_is_written_but_fails(fabricated: Path,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    done = _run("audit", "report", str(fabricated), "--out", str(out))
    assert done.exit_code == 1, done.output
    assert "does NOT verify" in done.stdout and "no log key was pinned" in done.stderr
    verdict = _verdict(out.read_text("utf-8"))
    assert 'class="verdict fail"' in verdict and "no log key was pinned" in verdict
    assert "✓" not in verdict and "verdict pass" not in verdict


def test_report_with_trust_bundle_key_is_never_green(fabricated: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    done = _run("audit", "report", str(fabricated), "--out", str(out), "--trust-bundle-key",
                "--lang", "zh-Hant")
    assert done.exit_code == 0, done.output
    assert "only agrees with itself" in done.stdout and "the bundle verifies" not in done.stdout
    verdict = _verdict(out.read_text("utf-8"))
    assert 'class="verdict unpinned"' in verdict and "verdict pass" not in verdict
    assert "日誌金鑰未經指定" in verdict and "✓" not in verdict
    pinned = _run("audit", "report", str(fabricated), "--out", str(out), "--log-key",
                  _vkey(fabricated))
    assert pinned.exit_code == 0 and "the bundle verifies" in pinned.stdout
    assert 'class="verdict pass"' in _verdict(out.read_text("utf-8"))


# --- signed notes as Go reads them (item 12) ----------------------------------------------------


def _with_foreign_lines(signed: str) -> str:
    """``signed`` plus a line by an unknown key in non-canonical base64, twice, and a repeat of
    the log's own line: a note Go's sumdb/note opens."""
    text, [own, *rest] = note.split_note(signed)
    line = note.Signer.generate("stranger.example/k").sign(text).to_line()
    head, encoded = line.rsplit(" ", 1)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    odd = f"{head} {encoded[:-2]}{alphabet[alphabet.index(encoded[-2]) | 1]}="
    assert odd != line
    return signed + f"{odd}\n{odd}\n{own.to_line()}\n"


def test_verify_accepts_a_checkpoint_with_ignorable_lines(fabricated: Path) -> None:
    path = fabricated / "checkpoint"
    path.write_text(_with_foreign_lines(path.read_text("utf-8")), "utf-8")
    done = _run("audit", "verify", str(fabricated), "--log-key", _vkey(fabricated))
    assert done.exit_code == 0, done.output


def test_verify_proof_accepts_a_checkpoint_with_ignorable_lines(tmp_path: Path) -> None:
    leaves = [b"one", b"two", b"three"]
    hashes = [merkle.leaf_hash(b) for b in leaves]
    cp = note.Checkpoint(T.LOG_NAME, 3, merkle.root_hash(hashes))
    signed = note.sign_note(cp.to_text(), [T.LOG_SIGNER])
    proof = merkle.inclusion_proof(1, 3, merkle.subtree_hasher(hashes))
    path = tmp_path / "p.tlog-proof"
    path.write_text(format_tlog_proof(1, proof, _with_foreign_lines(signed), extra=b"two"))
    done = _run("audit", "verify-proof", str(path), "--log-key", T.LOG_VERIFIER.to_vkey())
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith(f"OK: entry 1 is in {T.LOG_NAME} at tree size 3")
