"""`callproof audit …`: checkpoints, proofs, export bundles and their offline verification.

Registered on the main command line by :mod:`callproof._cli`. The verifying commands
(``verify``, ``verify-proof``) need no data dir: only the files an auditor was given.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click

from callproof._cli._common import EXIT_FAILED, deployment, emit
from callproof.auditor.bundle import load_verifier, verify_bundle
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
@click.pass_context
def checkpoint_cmd(ctx: click.Context) -> None:
    """Sign a checkpoint of the log as it is now (or print the latest if nothing changed),
    push it to the witnesses of witnesses.toml and print it with their cosignatures."""
    log = _log(ctx)
    signed = log.checkpoint()
    _push(log, signed)
    click.echo(log.cosigned_note(signed), nl=False)


@audit.command("vkey")
@click.pass_context
def vkey_cmd(ctx: click.Context) -> None:
    """Print the log's verifier key, for auditors to pin."""
    click.echo(_log(ctx).vkey())


@audit.command("prove")
@click.argument("ticket_id")
@click.option("--out", type=click.Path(dir_okay=False, writable=True),
              help="Write the proof here (default: stdout); .tlog-proof is customary.")
@click.pass_context
def prove_cmd(ctx: click.Context, ticket_id: str, out: str | None) -> None:
    """Write a C2SP tlog-proof that TICKET_ID's ticket.issued event is in the log."""
    proof = _log(ctx).prove_ticket(ticket_id)
    if out:
        Path(out).write_text(proof, "utf-8")
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(proof, nl=False)


@audit.command("consistency")
@click.argument("old_size", type=click.IntRange(min=1))
@click.argument("new_size", type=click.IntRange(min=1), required=False)
@click.pass_context
def consistency_cmd(ctx: click.Context, old_size: int, new_size: int | None) -> None:
    """Print a consistency proof (JSON) from OLD_SIZE to NEW_SIZE (default: the log's size)."""
    old, old_root, new, new_root, proof = _log(ctx).consistency_proof(old_size, new_size)
    emit({"old_size": old, "old_root": _b64(old_root), "new_size": new,
          "new_root": _b64(new_root), "proof": [_b64(h) for h in proof]})


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
def verify_proof_cmd(proof_file: BinaryIO, log_key: str, entry_file: BinaryIO | None,
                     witnesses: tuple[str, ...], quorum: int | None) -> None:
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
        click.echo(f"FAILED: {e}", err=True)
        sys.exit(EXIT_FAILED)
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
@click.pass_context
def export_cmd(ctx: click.Context, out: str, upto: int | None) -> None:
    """Write an export bundle: entries.jsonl, checkpoint (with witness cosignatures),
    jwks.json, log.vkey. The checkpoint is pushed to the witnesses first."""
    log = _log(ctx)
    signed = log.checkpoint(size=upto)
    _push(log, signed)
    signed = log.export(Path(out), upto=signed.size)
    click.echo(f"exported {signed.size} entries to {out} (root {_b64(signed.root)})")


@audit.command("verify")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--previous", type=click.File("rb"),
              help="An earlier signed checkpoint you kept: the bundle must extend it.")
@click.option("--log-key", "log_key", metavar="VKEY",
              help="Pin the log's verifier key (name+hex+base64, or a file holding it).")
@_witness_options
def verify_cmd(directory: str, previous: BinaryIO | None,
               log_key: str | None, witnesses: tuple[str, ...], quorum: int | None) -> None:
    """Check a bundle offline; exit 0 only when everything holds."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    _need_witnesses(witnesses, quorum)
    lines = _count_lines(Path(directory) / "entries.jsonl")
    show = lines >= 50_000 and sys.stderr.isatty()
    with Progress(TextColumn("verifying"), BarColumn(), MofNCompleteColumn(),
                  disable=not show, transient=True) as bar:
        task = bar.add_task("entries", total=lines)
        report = verify_bundle(directory, log_key=log_key,
                               previous=previous.read() if previous else None,
                               progress=lambda n: bar.update(task, completed=n),
                               witnesses=witnesses, quorum=quorum)
    for warning in report.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    for failure in report.failures:
        click.echo(f"FAILED: {failure}")
    if not report.ok:
        click.echo(f"{len(report.failures)} failure(s) in {directory}")
        _notes(report.notes)
        sys.exit(EXIT_FAILED)
    cp = report.checkpoint
    assert cp is not None  # noqa: S101 - no failure means the checkpoint was read
    cosigned = f", cosigned by {', '.join(report.cosigned_by)}" if report.cosigned_by else ""
    click.echo(f"OK: {report.entries} entries, {report.tickets} tickets, root "
               f"{_b64(cp.root)}, signed by {cp.origin}{cosigned}")
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
@click.option("--log-key", "log_key", metavar="VKEY",
              help="Pin the log's verifier key (name+hex+base64, or a file holding it).")
@click.option("--previous", type=click.File("rb"),
              help="An earlier signed checkpoint you kept: the bundle must extend it.")
@_witness_options
def report_cmd(directory: str, out: str, lang: str, tz: str, work_hours: str,
               log_key: str | None, previous: BinaryIO | None, witnesses: tuple[str, ...],
               quorum: int | None) -> None:
    """Write the auditor's report of a bundle: the verdict, anomalies and charts, offline.

    The report is written whether or not the bundle verifies (its first section says which);
    the exit status is 0 when it was written.
    """
    from callproof.auditor.report import ReportOptions, render_report

    _need_witnesses(witnesses, quorum)
    try:
        options = ReportOptions.parse_hours(work_hours, tz)
        options.zone  # noqa: B018 - refuse an unknown zone here, with its name
    except ValueError as e:
        raise click.BadParameter(str(e)) from e
    verdict = verify_bundle(directory, log_key=log_key,
                            previous=previous.read() if previous else None,
                            witnesses=witnesses, quorum=quorum)
    html = render_report(directory, lang=lang, options=options, log_key=log_key,
                         verdict=verdict)
    Path(out).write_text(html, "utf-8")
    for warning in verdict.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    state = "verifies" if verdict.ok else f"does NOT verify ({len(verdict.failures)} failure(s))"
    click.echo(f"wrote {out}: the bundle {state}; {verdict.entries} entries")
