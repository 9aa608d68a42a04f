"""The `callproof` command line. Every error is one clear line on stderr and a non-zero exit.

Each command lives in its own module of this package, imported only when the command (or its
``--help``) runs: ``callproof --help`` reads the short help from :data:`_COMMANDS`, which must
say what the first paragraph of each command's docstring says.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from callproof import __version__
from callproof._cli._common import EXIT_FAILED
from callproof._cli._lazy import LazyCommand, LazyGroup
from callproof.errors import CallproofError


def _at(target: str, help: str) -> LazyCommand:
    return LazyCommand(f"callproof._cli.{target}", help)


_COMMANDS = {
    "agents": _at("agents:agents", "The agent registry: names customers see come from here."),
    "api-keys": _at("apikeys:api_keys", "Issuer API keys: create (shown once), list, revoke."),
    "audit": _at("audit:audit", "The tamper-evident audit log: checkpoints, proofs, export "
                                "bundles, offline checks."),
    "call-status": _at("enroll:call_status", "What the company's app shows: is the company "
                                             "calling this customer now?"),
    "check-code": _at("tickets:check_code", "The operator's read-only look at CODE: claims "
                                            "nothing, counts nothing."),
    "coverage": _at("enroll:coverage", "Tickets per department on a day: every team that calls "
                                       "must issue tickets."),
    "customers": _at("customers:customers", "The link from customer refs to ticket handles."),
    "demo": _at("serve:demo", "Initialise a demo data dir if missing, start the server, and "
                              "print where to look."),
    "desk": _at("desk:desk", "The fraud desk: its users, the alert webhook, alerts, reports, "
                             "police facts."),
    "enroll": _at("enroll:enroll", "Enrol a customer's authenticator app or phrase (normally "
                                   "done in the logged-in site)."),
    "init": _at("serve:init", "Create the data dir (config, keys, database, demo agents and "
                              "reasons); keep what exists."),
    "issue": _at("tickets:issue", "Issue a call ticket for a call placed now."),
    "keys": _at("keys:keys", "Ticket signing keys: list, rotate, revoke, export the public "
                             "JWKS."),
    "notice": _at("notice:notice", "The anti-fraud notice card for receipts, order pages, "
                                   "packing slips and e-mails."),
    "reasons": _at("reasons:reasons", "The reason catalogue: why the company calls, in three "
                                      "languages."),
    "reveal": _at("enroll:reveal", "Show the customer's current app code and/or phrase for "
                                   "TICKET_ID's connected call."),
    "serve": _at("serve:serve", "Serve the check page, the API and the console with gunicorn."),
    "tickets": _at("tickets:tickets", "What the dialer reports about a call, and the agent's "
                                      "view of it."),
    "verify": _at("tickets:verify", "Verify TICKET ('-' reads stdin); print its claims, or the "
                                    "outcome and exit 1."),
    "voice": _at("voice:voice", "The voice line: agents' transfer targets, and its prompts' "
                                "audio."),
    "worker": _at("worker:worker", "Run the background duties on timers: integration, "
                                   "checkpoints, witnesses, alerts."),
    "witness": _at("witness:witness", "A C2SP tlog-witness: cosign each log checkpoint that "
                                      "extends the last one it saw."),
}


class _Group(LazyGroup):
    """Turns every CallproofError into one line on stderr and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CallproofError as e:
            click.echo(f"callproof: {e}", err=True)
            sys.exit(EXIT_FAILED)


@click.group(cls=_Group, lazy_commands=_COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", envvar="CALLPROOF_DATA_DIR", default="./callproof-data",
              show_default=True, type=click.Path(file_okay=False),
              help="Where keys, config and the SQLite database live (env CALLPROOF_DATA_DIR).")
@click.version_option(__version__, prog_name="callproof")
@click.pass_context
def cli(ctx: click.Context, data_dir: str) -> None:
    """callproof: prove to the customer you are calling that it is really you."""
    ctx.obj = {"data_dir": data_dir}


def main() -> None:
    cli(prog_name="callproof")
