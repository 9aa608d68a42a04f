"""`callproof witness …`: run a C2SP tlog-witness for the logs you audit.

Registered on the main command line by :mod:`callproof._cli`. It needs no callproof data dir:
a witness lives in its own state dir (``--state-dir``, env ``CALLPROOF_WITNESS_DIR``), usually
on a machine of the auditor's, not the company's.
"""

from __future__ import annotations

import ipaddress
import json

import click

from callproof.config import passphrase
from callproof.witness.server import Witness, add_log, init_witness

_STATE_DIR = click.option(
    "--state-dir", envvar="CALLPROOF_WITNESS_DIR", default="./witness-data", show_default=True,
    type=click.Path(file_okay=False),
    help="The witness's key, the logs it witnesses and its state (env CALLPROOF_WITNESS_DIR).")


@click.group()
def witness() -> None:
    """A C2SP tlog-witness: cosign each log checkpoint that extends the last one it saw."""


@witness.command("init")
@click.argument("name")
@_STATE_DIR
@click.option("--log", "logs", multiple=True, metavar="VKEY",
              help="A log to witness: its verifier key (`callproof audit vkey`). Repeatable.")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON: the name, the verifier key, the state dir and the logs.")
def init_cmd(name: str, state_dir: str, logs: tuple[str, ...], as_json: bool) -> None:
    """Create a witness called NAME (e.g. auditor.example/w1) and print its verifier key.

    The key is written 0600 and encrypted with CALLPROOF_KEY_PASSPHRASE when that is set.
    """
    w = init_witness(state_dir, name, passphrase=passphrase(), logs=logs)
    if not passphrase():
        click.secho("warning: CALLPROOF_KEY_PASSPHRASE is not set: the witness key is stored "
                    "unencrypted", fg="yellow", err=True)
    if as_json:
        click.echo(json.dumps({"name": w.name, "vkey": w.vkey(), "state_dir": str(state_dir),
                               "logs": sorted(str(origin) for origin in w.logs())},
                              ensure_ascii=False))
        return
    click.echo(f"initialised the witness {name} in {state_dir}; give the log its key:", err=True)
    click.echo(w.vkey())


@witness.command("add-log")
@click.argument("vkey")
@click.option("--origin", help="The log's checkpoint origin, when it is not the key's name.")
@_STATE_DIR
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def add_log_cmd(vkey: str, origin: str | None, state_dir: str, as_json: bool) -> None:
    """Witness one more log, given its verifier key VKEY."""
    added = add_log(state_dir, vkey, origin)
    if as_json:
        click.echo(json.dumps({"origin": str(added)}))
    else:
        click.echo(f"witnessing {added}")


@witness.command("vkey")
@_STATE_DIR
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def vkey_cmd(state_dir: str, as_json: bool) -> None:
    """Print the witness's cosignature verifier key (for logs and auditors)."""
    w = Witness.open(state_dir, passphrase=passphrase())
    if as_json:
        click.echo(json.dumps({"name": w.name, "vkey": w.vkey()}))
    else:
        click.echo(w.vkey())


@witness.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=7380, show_default=True, type=click.IntRange(0, 65535))
@_STATE_DIR
def serve_cmd(host: str, port: int, state_dir: str) -> None:
    """Serve POST /add-checkpoint (C2SP tlog-witness) and, for monitors, GET
    /<origin hash>/checkpoint, until Ctrl-C."""
    from werkzeug.serving import make_server

    from callproof.witness.app import create_app

    w = Witness.open(state_dir, passphrase=passphrase())
    if not _loopback(host):
        click.secho(f"warning: serving on {host}, not on loopback: put it behind a TLS proxy",
                    fg="yellow", err=True)
    server = make_server(host, port, create_app(w), threaded=True)
    logs = ", ".join(sorted(w.logs())) or "none yet (callproof witness add-log)"
    click.echo(f"witness {w.name} on http://{host}:{server.server_port}/ — logs: {logs}",
               err=True)
    click.echo(w.vkey())
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        pass
    finally:
        server.server_close()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
