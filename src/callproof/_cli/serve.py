"""`callproof init`, `demo` and `serve`: make a data dir, and serve the check page, the API and
the agent console from it with gunicorn.

``serve`` opens the deployment once before forking its workers, so a broken config or database
is one clear line, not a worker crash loop.
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from callproof._cli._common import data_dir, deployment
from callproof.bootstrap import DEMO_AGENTS, DEMO_REASONS, init_data_dir
from callproof.config import DataDir
from callproof.deployment import Deployment
from callproof.issuer import Issuer
from callproof.protocol.clock import iso


@click.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the data dir (config, keys, database, demo agents and reasons); keep what exists."""
    report = init_data_dir(data_dir(ctx).path)
    for warning in report.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    if report.created:
        click.echo(f"initialised {report.data_dir}: " + ", ".join(report.created))
    else:
        click.echo(f"{report.data_dir} is already initialised; nothing changed")


@click.command()
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Only prepare and print; do not start the server.")
@click.pass_context
def demo(ctx: click.Context, port: int, no_serve: bool) -> None:
    """Initialise a demo data dir if missing, start the server, and print where to look."""
    import secrets

    from callproof.agent_auth import AgentPasswords

    report = init_data_dir(data_dir(ctx).path)
    for warning in report.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    dep = deployment(ctx)
    issuer = Issuer(dep)
    agent_id, name, _ = DEMO_AGENTS[0]
    password = secrets.token_urlsafe(12)  # a fresh demo password each run, never stored in clear
    AgentPasswords(dep).set(agent_id, password)
    reason = next(iter(DEMO_REASONS))
    call = issuer.issue(agent_id=agent_id, reason=reason, phone="+886912345678")
    base = f"http://127.0.0.1:{port}"
    console = Console(soft_wrap=True)  # long lines stay whole, ready to copy
    company = dep.config.company
    console.print(f"[bold]{company.name}[/bold] is calling +886 ••• ••5 678.")
    console.print(f"Agent {name}: \"{DEMO_REASONS[reason]['en']}\". The call code is:")
    console.print(f"\n    [bold green]{call.code_display}[/bold green]\n")
    console.print(f"(ticket {call.ticket_id}, valid until {iso(call.expires_at)})\n")
    console.print(f"The customer's check page:  {base}/")
    console.print(f"The agent console:          {base}/console/  "
                  f"(agent id {agent_id}, password {password})", highlight=False)
    console.print("\nOr look the code up as an operator (claims nothing):")
    console.print(f"  callproof --data-dir {data_dir(ctx).path} check-code '{call.code_display}'")
    if no_serve:
        return
    console.print(f"\nServing on {base} — Ctrl-C stops it.", highlight=False)
    _serve(data_dir(ctx), "127.0.0.1", port, 2)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int) -> None:
    """Serve the check page, the API and the console with gunicorn."""
    _serve(data_dir(ctx), host, port, workers)


def _serve(directory: DataDir, host: str, port: int, workers: int) -> None:
    import os

    from gunicorn.app.base import BaseApplication

    from verifier_app import create_app

    os.environ["CALLPROOF_DATA_DIR"] = str(directory.path)
    Deployment.open(directory).store.close()  # fail here, clearly, before forking workers

    class _App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("accesslog", None)  # no access log: it would keep addresses
            self.cfg.set("errorlog", "-")

        def load(self) -> Any:
            return create_app()

    _App().run()
