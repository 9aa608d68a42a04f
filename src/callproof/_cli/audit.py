"""`callproof audit …`: checkpoints, proofs, export bundles and their offline verification.

Registered on the main command line by :mod:`callproof._cli`. The verifying commands
(``verify``, ``verify-proof``) need no data dir: only the files an auditor was given.
"""

from __future__ import annotations

import base64
import errno
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NoReturn

import click

from callproof._cli._common import EXIT_FAILED, deployment, emit
from callproof.auditor.bundle import NOT_PINNED, load_verifier, verify_bundle
from callproof.tlog import merkle, note
from callproof.tlog.cosign import check_quorum
from callproof.tlog.proof import parse_tlog_proof, verify_tlog_proof

if TYPE_CHECKING:
    from callproof.audit.log import AuditLog, PushResult, SignedCheckpoint


def _log(ctx: click.Context) -> AuditLog:
    """The data dir's audit log, imported here and not above: the offline checks (``verify``,
    ``verify-proof``, ``report``) need no data dir, so they must not pay for the store."""
    from callproof.audit.log import AuditLog

    return AuditLog(deployment(ctx))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _cannot_write(e: OSError, what: str, then: str) -> NoReturn:
    """One line for a file that could not be written (a full disk, a read-only mount …) and a
    non-zero exit, instead of a traceback."""
    where = f" ({e.filename})" if e.filename else ""
    reason = e.strerror or e.__class__.__name__
    if e.errno == errno.ENOSPC:
        reason = "no space left on the device"
    click.echo(f"callproof: cannot write {what}{where}: {reason}. {then}", err=True)
    sys.exit(EXIT_FAILED)


def _write_out(path: Path, data: bytes, what: str) -> None:
    try:
        path.write_bytes(data)
    except OSError as e:
        _cannot_write(e, what, "Nothing else changed; free some space and run it again.")


@click.group()
def audit() -> None:
    """The tamper-evident audit log: checkpoints, proofs, export bundles, offline checks."""


def _push(log: AuditLog, signed: SignedCheckpoint) -> list[PushResult]:
    """Push to the witnesses of witnesses.toml (if any) and say on stderr who cosigned."""
    if not log.witnesses():
        return []
    results = log.push_to_witnesses(signed)
    for result in results:
        click.secho(str(result), err=True, fg=None if result.ok else "yellow")
    done = sum(r.ok for r in results)
    click.echo(f"{done} of {len(results)} witnesses cosigned the checkpoint of {signed.size}",
               err=True)
    return results


@audit.command("checkpoint")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def checkpoint_cmd(ctx: click.Context, as_json: bool) -> None:
    """Sign a checkpoint of the log as it is now (or print the latest if nothing changed),
    push it to the witnesses of witnesses.toml and print it with their cosignatures."""
    log = _log(ctx)
    try:
        signed = log.checkpoint()
    except OSError as e:  # the checkpoint file, written before the database commits
        _cannot_write(e, "the log's checkpoint file", "The checkpoint was not recorded; free "
                      "some space and run `callproof audit checkpoint` again.")
    results = _push(log, signed)
    if as_json:
        emit({"size": signed.size, "root": _b64(signed.root),
              "cosigned": sum(r.ok for r in results), "witnesses": len(results),
              "note": log.cosigned_note(signed)})
    else:
        click.echo(log.cosigned_note(signed), nl=False)


@audit.command("new-log-key")
@click.option("--yes", is_flag=True, help="Do it without asking.")
@click.pass_context
def new_log_key_cmd(ctx: click.Context, yes: bool) -> None:
    """Start the log over with a new log key, when the newest database is lost for good.

    Only when the database is behind (or forked from) the log's checkpoint file — an older
    backup restored, the newer database gone. The old log ends at that file's checkpoint: the
    file and the old key are kept under retired names, a new key is made, and the notice to
    give auditors and witness operators is printed (README: "When the database is behind the
    log").
    """
    from datetime import UTC, datetime

    from callproof._files import create_key_file
    from callproof.audit.log import AuditLog
    from callproof.config import passphrase
    from callproof.errors import ConfigError, InputError
    from callproof.store.log_tree import read_checkpoint_file, root_at, tree_size

    dep = deployment(ctx)
    dd, log = dep.data_dir, AuditLog(dep)
    path = dd.log_checkpoint_file
    if not path.exists():
        raise InputError(f"{path} does not exist: the log has no checkpoint that the database "
                         "could be behind, and nothing to recover")
    old_note = path.read_text("utf-8")
    last = read_checkpoint_file(path, log.origin)
    with dep.store.read() as conn:
        size = tree_size(conn, dep.issuer_id)
        forked = size >= last.size and root_at(conn, dep.issuer_id, last.size) != last.root
    if size >= last.size and not forked:
        raise InputError(
            f"the database holds {size} log entries and agrees with the checkpoint of "
            f"{last.size}: it is not behind, and the log goes on as it is. A new log key is "
            "only for a database that lost the newest entries")
    try:
        old_vkey = log.vkey()  # the key that signed the file, unless it is lost too
    except ConfigError as e:
        old_vkey = f"(unknown: {e})"
    if forked:
        state, lost = f"forked from it at {last.size} entries", "its entries"
    else:
        state = f"behind it: {size} entries, where the checkpoint covers {last.size}"
        lost = f"its entries from {size} on"
    click.echo(f"The database is {state}. The log {log.origin} signed by {old_vkey} ends at "
               "that checkpoint; what this database lacks cannot be restored from it.", err=True)
    if not yes:
        click.confirm("Retire the log key and the checkpoint file, and start the log over "
                      "with a new key?", abort=True, err=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    retired = path.parent / "retired"
    kept_note = retired / f"checkpoint-{stamp}"
    kept_key = dd.log_key_file.with_name(f"log.key.retired-{stamp}")
    try:
        retired.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.replace(path, kept_note)
        if dd.log_key_file.exists():
            os.replace(dd.log_key_file, kept_key)
        create_key_file(dd.log_key_file, passphrase())
    except OSError as e:
        _cannot_write(e, "the new log key", f"Look at {kept_note} and {kept_key}; nothing was "
                      "signed with a new key.")
    new = AuditLog(dep)
    new_vkey = new.vkey()
    signed = new.checkpoint()
    try:
        note.open_note(signed.note, [new.verifier()])
        first = f"The new key signed a checkpoint of {signed.size} entries."
    except note.NoteError:
        first = ("The new key signs its first checkpoint when the log next grows (the latest "
                 f"one, of {signed.size} entries, was signed by the old key).")
    click.echo("\n".join([
        f"The log starts over with a new key. {first}",
        "",
        f"Kept: the old log's last checkpoint, {kept_note}",
        f"      the old log key, {kept_key}",
        "Copy keys/log.key to every host that runs `callproof worker` or signs checkpoints, and",
        "re-apply every ticket-key revocation made after the backup was taken.",
        "",
        "Tell the auditors and the witness operators, giving them both keys and the checkpoint:",
        f"- the log {log.origin} signed by the old key ends at its checkpoint of {last.size}",
        f"  entries; {lost} were lost with the newest database;",
        "- from now on the log is signed by the new key: pin it (--log-key) for new bundles;",
        "- witness operators add the new key (`callproof witness add-log NEW_KEY`) and set their",
        "  state for this log aside (README), or they refuse every new checkpoint as a fork.",
        "",
        f"old key: {old_vkey}",
        f"new key: {new_vkey}",
        "the old log's last checkpoint:",
        old_note]), nl=False)


@audit.command("vkey")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def vkey_cmd(ctx: click.Context, as_json: bool) -> None:
    """Print the log's verifier key, for auditors to pin."""
    log = _log(ctx)
    if as_json:
        emit({"vkey": log.vkey(), "origin": log.origin})
    else:
        click.echo(log.vkey())


@audit.command("prove")
@click.argument("ticket_id")
@click.option("--out", type=click.Path(dir_okay=False, writable=True),
              help="Write the proof here (default: stdout); .tlog-proof is customary.")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON: the ticket, its leaf index, the checkpoint's origin and size, "
                   "--out, and the proof's text.")
@click.pass_context
def prove_cmd(ctx: click.Context, ticket_id: str, out: str | None, as_json: bool) -> None:
    """Write a C2SP tlog-proof that TICKET_ID's ticket.issued event is in the log."""
    proof = _log(ctx).prove_ticket(ticket_id)
    if out:
        _write_out(Path(out), proof.encode("utf-8"), "the proof")
    if as_json:
        _, index, _, signed = parse_tlog_proof(proof)
        checkpoint = note.Checkpoint.from_text(note.split_note(signed)[0])
        emit({"ticket_id": ticket_id, "index": index, "origin": checkpoint.origin,
              "size": checkpoint.size, "out": out, "proof": proof})
    elif out:
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(proof, nl=False)


@audit.command("consistency")
@click.argument("old_size", type=click.IntRange(min=1))
@click.argument("new_size", type=click.IntRange(min=1), required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def consistency_cmd(ctx: click.Context, old_size: int, new_size: int | None,
                    as_json: bool) -> None:
    """Print a consistency proof from OLD_SIZE to NEW_SIZE (default: the log's size)."""
    old, old_root, new, new_root, proof = _log(ctx).consistency_proof(old_size, new_size)
    hashes = [_b64(h) for h in proof]
    if as_json:
        emit({"old_size": old, "old_root": _b64(old_root), "new_size": new,
              "new_root": _b64(new_root), "proof": hashes})
        return
    click.echo(f"old size {old}, root {_b64(old_root)}")
    click.echo(f"new size {new}, root {_b64(new_root)}")
    n = len(hashes)
    click.echo(f"proof: {n} hash{'' if n == 1 else 'es'}" + "".join(f"\n  {h}" for h in hashes))


def _witness_options(f: Callable[..., None]) -> Callable[..., None]:
    f = click.option("--quorum", type=click.IntRange(min=1), metavar="K",
                     help="How many of the --witness keys must have cosigned (default: all).")(f)
    return click.option("--witness", "witnesses", multiple=True, metavar="VKEY",
                        help="A witness's cosignature key (name+hex+base64, or a file holding "
                             "it); repeat for each witness you trust.")(f)


def _need_witnesses(witnesses: tuple[str, ...], quorum: int | None) -> None:
    if quorum is not None and not witnesses:
        raise click.UsageError("--quorum needs the witnesses' keys (--witness VKEY …)")


@audit.command("verify-proof")
@click.argument("proof_file", type=click.File("rb"))
@click.option("--log-key", "log_key", required=True, metavar="VKEY",
              help="The log's verifier key (name+hex+base64), or a file holding it.")
@click.option("--entry", "entry_file", type=click.File("rb"),
              help="The entry's bytes, when the proof carries none.")
@_witness_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def verify_proof_cmd(proof_file: BinaryIO, log_key: str, entry_file: BinaryIO | None,
                     witnesses: tuple[str, ...], quorum: int | None, as_json: bool) -> None:
    """Check a tlog-proof offline; exit 0 only when the entry is in the signed tree and, with
    --witness, a quorum of those witnesses cosigned its checkpoint."""
    _need_witnesses(witnesses, quorum)
    text = proof_file.read()
    cosigned: list[str] = []
    try:
        report = verify_tlog_proof(text, load_verifier(log_key),
                                   entry=entry_file.read() if entry_file else None)
        if witnesses:
            good, problems = check_quorum(parse_tlog_proof(text)[3],
                                          [load_verifier(w) for w in witnesses], quorum)
            cosigned = [w.name for w in good]
            for problem in problems:
                click.secho(f"warning: witness {problem}", fg="yellow", err=True)
    except (note.NoteError, merkle.ProofError) as e:
        if as_json:
            emit({"ok": False, "failure": str(e)})
        click.echo(f"FAILED: {e}", err=True)
        sys.exit(EXIT_FAILED)
    if as_json:
        emit({"ok": True, "index": report.index, "origin": report.checkpoint.origin,
              "size": report.checkpoint.size, "cosigned_by": cosigned,
              "type": report.event.type if report.event is not None else None,
              "ticket_id": report.event.data.get("ticket_id") if report.event else None})
        return
    what = ""
    if report.event is not None:
        ticket = report.event.data.get("ticket_id")
        what = f" ({report.event.type}" + (f" of {ticket})" if ticket else ")")
    click.echo(f"OK: entry {report.index}{what} is in {report.checkpoint.origin} at tree size "
               f"{report.checkpoint.size}"
               + (f", cosigned by {', '.join(cosigned)}" if cosigned else ""))
    if not witnesses:
        _notes(["no witness keys were given (--witness): no witness quorum was checked, so only "
                "the log vouches that everyone was shown this history"])


@audit.command("export")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="The bundle directory (created if missing).")
@click.option("--upto", type=click.IntRange(min=0),
              help="Export the first SIZE entries only (default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def export_cmd(ctx: click.Context, out: str, upto: int | None, as_json: bool) -> None:
    """Write an export bundle: entries.jsonl, checkpoint (with witness cosignatures),
    jwks.json, log.vkey. The checkpoint is pushed to the witnesses first."""
    log = _log(ctx)
    try:
        signed = log.checkpoint(size=upto)
    except OSError as e:
        _cannot_write(e, "the log's checkpoint file", "Nothing was exported; free some space "
                      "and export again.")
    _push(log, signed)
    try:
        signed = log.export(Path(out), upto=signed.size)
    except OSError as e:
        (Path(out) / ".entries.jsonl.tmp").unlink(missing_ok=True)  # the exporter's, half done
        _cannot_write(e, f"the bundle in {out}", "The bundle is incomplete: do not hand it "
                      "over; free some space and export again.")
    if as_json:
        emit({"entries": signed.size, "out": out, "root": _b64(signed.root)})
    else:
        click.echo(f"exported {signed.size} entries to {out} (root {_b64(signed.root)})")


def _key_options(f: Callable[..., None]) -> Callable[..., None]:
    f = click.option("--trust-bundle-key", is_flag=True,
                     help="No --log-key: use the bundle's own log.vkey, which shows only that "
                          "the bundle agrees with itself (a warning says so).")(f)
    return click.option("--log-key", "log_key", metavar="VKEY",
                        help="Pin the log's verifier key (name+hex+base64, or a file holding "
                             "it): the key the company published. Required, unless "
                             "--trust-bundle-key.")(f)


def _need_key(log_key: str | None, trust_bundle_key: bool) -> None:
    if log_key is not None and trust_bundle_key:
        raise click.UsageError("--trust-bundle-key is for a check without --log-key; give one "
                               "of them")


@audit.command("verify")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--previous", type=click.File("rb"),
              help="An earlier signed checkpoint you kept: the bundle must extend it.")
@_key_options
@_witness_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def verify_cmd(directory: str, previous: BinaryIO | None, log_key: str | None,
               trust_bundle_key: bool, witnesses: tuple[str, ...], quorum: int | None,
               as_json: bool) -> None:
    """Check a bundle offline; exit 0 only when everything holds.

    The log key must be pinned (--log-key, as the company published it): a bundle checked
    against its own log.vkey proves nothing about the company's log, so without --log-key the
    check fails unless --trust-bundle-key says that is what you want.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    _need_witnesses(witnesses, quorum)
    _need_key(log_key, trust_bundle_key)
    lines = _count_lines(Path(directory) / "entries.jsonl")
    show = lines >= 50_000 and sys.stderr.isatty()
    with Progress(TextColumn("verifying"), BarColumn(), MofNCompleteColumn(),
                  disable=not show, transient=True) as bar:
        task = bar.add_task("entries", total=lines)
        report = verify_bundle(directory, log_key=log_key,
                               previous=previous.read() if previous else None,
                               progress=lambda n: bar.update(task, completed=n),
                               witnesses=witnesses, quorum=quorum,
                               trust_bundle_key=trust_bundle_key)
    if as_json:
        cp = report.checkpoint
        emit({"ok": report.ok, "entries": report.entries, "tickets": report.tickets,
              "root": _b64(cp.root) if cp is not None else None,
              "origin": cp.origin if cp is not None else None, "pinned": report.pinned,
              "cosigned_by": list(report.cosigned_by),
              "failures": [{"line": f.line, "code": f.code, "message": f.message}
                           for f in report.failures],
              "warnings": [str(w) for w in report.warnings], "notes": list(report.notes)})
        if not report.ok:
            sys.exit(EXIT_FAILED)
        return
    for warning in report.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    for failure in report.failures:
        click.echo(f"FAILED: {failure}")
    if not report.ok:
        n = len(report.failures)
        click.echo(f"{n} failure{'' if n == 1 else 's'} in {directory}")
        _notes(report.notes)
        sys.exit(EXIT_FAILED)
    cp = report.checkpoint
    assert cp is not None  # noqa: S101 - no failure means the checkpoint was read
    cosigned = f", cosigned by {', '.join(report.cosigned_by)}" if report.cosigned_by else ""
    key = "" if report.pinned else " (its own key, NOT pinned: it only agrees with itself)"
    click.echo(f"OK: {report.entries} entries, {report.tickets} tickets, root "
               f"{_b64(cp.root)}, signed by {cp.origin}{key}{cosigned}")
    _notes(report.notes)


def _notes(notes: list[str]) -> None:
    for remark in notes:  # after the verdict, whose line scripts read first
        click.echo(f"note: {remark}", err=True)


def _count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except OSError:
        return 0


@audit.command("report")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False, writable=True),
              help="The HTML file to write (one self-contained file).")
@click.option("--lang", type=click.Choice(["en", "zh-Hant", "zh-Hans"]), default="en",
              show_default=True, help="The report's language.")
@click.option("--tz", default="Asia/Taipei", show_default=True,
              help="The company's time zone, for days, hours and working hours.")
@click.option("--hours", "work_hours", default="08:00-20:00", show_default=True,
              help="Working hours in that zone; calls outside them are anomalies.")
@_key_options
@click.option("--previous", type=click.File("rb"),
              help="An earlier signed checkpoint you kept: the bundle must extend it.")
@_witness_options
@click.option("--progress/--no-progress", "show_progress", default=None,
              help="Show progress bars while the bundle is checked and counted (default: when "
                   "stderr is a terminal).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary line's facts as JSON (the report itself goes to --out).")
def report_cmd(directory: str, out: str, lang: str, tz: str, work_hours: str,
               log_key: str | None, trust_bundle_key: bool, previous: BinaryIO | None,
               witnesses: tuple[str, ...], quorum: int | None,
               show_progress: bool | None, as_json: bool = False) -> None:
    """Write the auditor's report of a bundle: the verdict, anomalies and charts, offline.

    The report is written whether or not the bundle verifies (its first section says which);
    the exit status is 0 when it was written — and 1 when the log key was not pinned
    (--log-key; --trust-bundle-key accepts the bundle's own key, and the verdict says so).
    """
    from callproof.auditor.report import ReportOptions, render_report

    _need_witnesses(witnesses, quorum)
    _need_key(log_key, trust_bundle_key)
    try:
        options = ReportOptions.parse_hours(work_hours, tz)
        options.zone  # noqa: B018 - refuse an unknown zone here, with its name
    except ValueError as e:
        raise click.BadParameter(str(e)) from e
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    lines = _count_lines(Path(directory) / "entries.jsonl")
    show = sys.stderr.isatty() if show_progress is None else show_progress
    with Progress(TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
                  console=Console(file=sys.stderr, highlight=False), disable=not show,
                  transient=sys.stderr.isatty()) as bar:
        checking = bar.add_task("checking", total=lines)
        verdict = verify_bundle(directory, log_key=log_key,
                                previous=previous.read() if previous else None,
                                witnesses=witnesses, quorum=quorum,
                                trust_bundle_key=trust_bundle_key,
                                progress=lambda n: bar.update(checking, completed=n))
        bar.update(checking, completed=lines)
        counting = bar.add_task("counting", total=lines)
        html = render_report(directory, lang=lang, options=options, log_key=log_key,
                             verdict=verdict,
                             progress=lambda n: bar.update(counting, completed=n))
    _write_out(Path(out), html.encode("utf-8"), "the report")
    for warning in verdict.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    if not verdict.ok:
        n = len(verdict.failures)
        state = f"does NOT verify ({n} failure{'' if n == 1 else 's'})"
    elif not verdict.pinned:
        state = "only agrees with itself (its log key was NOT pinned)"
    else:
        state = "verifies"
    if as_json:
        emit({"out": out, "lang": lang, "ok": verdict.ok, "pinned": verdict.pinned,
              "failures": len(verdict.failures), "entries": verdict.entries})
    else:
        click.echo(f"wrote {out}: the bundle {state}; {verdict.entries} entries")
    if log_key is None and not trust_bundle_key:
        click.echo(f"callproof: {NOT_PINNED}", err=True)
        sys.exit(EXIT_FAILED)
