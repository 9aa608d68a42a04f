"""`callproof init`, `demo` and `serve`: make a data dir, and serve the check page, the API and
the agent console from it with gunicorn.

``serve`` opens the deployment once before forking its workers, so a broken config or database
is one clear line, not a worker crash loop. It listens on loopback unless told that the TLS proxy
is in front (``--behind-proxy``) or that nothing is (``--exposed-without-proxy``); its worker model
and timeouts are the measured ones of spec/adr/0010; each instance has its own gunicorn control
socket or none, so several on one host stop independently.
"""

from __future__ import annotations

from typing import Any, NoReturn

import click
from rich.console import Console

from callproof._cli._common import EXIT_ERROR, data_dir, deployment, emit
from callproof.bootstrap import DEMO_AGENTS, DEMO_REASONS, init_data_dir
from callproof.config import DataDir
from callproof.deployment import Deployment
from callproof.issuer import Issuer

#: The worker model and its timeouts, chosen from measurement (spec/adr/0010).
WORKERS = 2
THREADS = 4
TIMEOUT = 30  # seconds a worker may be silent before it is killed and replaced
GRACEFUL_TIMEOUT = 10  # seconds to finish requests under way when stopping
KEEPALIVE_DIRECT = 5  # idle keep-alive seconds for clients that reach the server directly
#: Behind the proxy: longer than nginx's upstream keepalive_timeout (60 s), so the server never
#: closes a pooled connection the proxy is about to reuse.
KEEPALIVE_BEHIND_PROXY = 75


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
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-serve", is_flag=True, help="Only prepare and print; do not start the server.")
@click.option("--new-password", is_flag=True,
              help="Give the demo agent a new console password (a second run keeps the old "
                   "one unless this is given).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the call code, ticket, password (null when kept), addresses and "
                   "commands as JSON; the server's own lines go to stderr.")
@click.pass_context
def demo(ctx: click.Context, port: int, no_serve: bool, new_password: bool,
         as_json: bool) -> None:
    """Initialise a demo data dir if missing, start the server, and print where to look.

    A second run keeps the demo agent's password (and says so); ``--new-password`` replaces it.
    A port already in use is refused before anything changes, naming the port and what to do.
    """
    import secrets

    from callproof.agent_auth import AgentPasswords

    if not no_serve:
        _need_free_port(port)
    report = init_data_dir(data_dir(ctx).path)
    for warning in report.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    dep = deployment(ctx)
    issuer = Issuer(dep)
    agent = DEMO_AGENTS[0]
    password: str | None = None
    if new_password or not _has_password(dep, agent.agent_id):
        password = secrets.token_urlsafe(12)  # shown once, stored only as an Argon2id hash
        AgentPasswords(dep).set(agent.agent_id, password)
    reason = next(iter(DEMO_REASONS))
    call = issuer.issue(agent_id=agent.agent_id, reason=reason, phone="+886912345678")
    base = f"http://127.0.0.1:{port}"
    shell = f"callproof --data-dir {data_dir(ctx).path}"
    facts = {**call.to_json(), "company": dep.config.company.name, "agent_id": agent.agent_id,
             "agent_name": agent.name, "reason": reason, "password": password,
             "check_page": f"{base}/", "console": f"{base}/console/",
             "call_page": f"{base}/console/tickets/{call.ticket_id}",
             "status_command": f"{shell} tickets status {call.ticket_id}",
             "check_code_command": f"{shell} check-code '{call.code_display}'"}
    del facts["ticket"]  # the signed token: the dialer's, not the person trying the demo
    if as_json:
        emit(facts)
    else:
        _print_demo(facts)
    if no_serve:
        return
    click.echo(f"\nServing on {base} — Ctrl-C stops it.", err=as_json)
    _serve(data_dir(ctx), "127.0.0.1", port, 2)


def _print_demo(facts: dict[str, Any]) -> None:
    """The demo's facts for a person: the call code big, then where each side looks."""
    console = Console(soft_wrap=True, highlight=False)  # long lines stay whole, ready to copy
    console.print(f"[bold]{facts['company']}[/bold] is calling +886 ••• ••5 678.")
    console.print(f"Agent {facts['agent_name']}: \"{DEMO_REASONS[facts['reason']]['en']}\". "
                  "The call code is:")
    console.print(f"\n    [bold green]{facts['code_display']}[/bold green]\n")
    console.print(f"(ticket {facts['ticket_id']}, valid until {facts['expires_at']})\n")
    console.print(f"1. The customer's check page:  {facts['check_page']}  "
                  "(type the call code there)")
    sign_in = f"agent id {facts['agent_id']}, " + (
        f"password {facts['password']}" if facts["password"] is not None else
        "the password from the first run: kept, not reset; "
        "`callproof demo --new-password` makes a new one")
    console.print(f"2. The agent console:          {facts['console']}  ({sign_in})")
    console.print("3. The check word, once the customer has typed the code — the agent sees it "
                  f"on this call's console page:\n     {facts['call_page']}")
    console.print(f"   or in the shell:\n     {facts['status_command']}")
    console.print("\nOr look the code up as an operator (claims nothing):")
    console.print(f"  {facts['check_code_command']}")


def _has_password(dep: Deployment, agent_id: str) -> bool:
    """Whether the agent has a console password already (set by an earlier demo run)."""
    from sqlalchemy import select

    from callproof.store import schema

    c = schema.agent_credentials
    with dep.store.read() as conn:
        return conn.execute(select(c.c.agent_id).where(
            c.c.issuer_id == dep.issuer_id, c.c.agent_id == agent_id)).first() is not None


def _need_free_port(port: int) -> None:
    """Refuse (exit 2) when 127.0.0.1:``port`` is taken, naming it and a free one to use."""
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        try:
            probe.bind(("127.0.0.1", port))
            return
        except OSError:
            pass
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        free = other.getsockname()[1]
    _refuse(f"port {port} on 127.0.0.1 is already in use (another `callproof demo` or "
            f"server?): stop that one, or run `callproof demo --port {free}`. Nothing changed.")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on. Anything but loopback needs --behind-proxy.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=WORKERS, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes.")
@click.option("--threads", default=THREADS, show_default=True, type=click.IntRange(1, 64),
              help="Threads per worker process (1: gunicorn's sync worker).")
@click.option("--behind-proxy", is_flag=True,
              help="The TLS reverse proxy (deploy/nginx/callproof.conf) is the only client: "
                   "allows a non-loopback --host and keeps upstream connections open.")
@click.option("--exposed-without-proxy", is_flag=True,
              help="Serve clients directly on a non-loopback --host, with nothing in front "
                   "(slow clients can then tie up every thread; spec/adr/0010).")
@click.option("--control-socket", type=click.Path(dir_okay=False),
              help="Gunicorn's control socket for this instance (default: none).")
@click.option("--no-worker", is_flag=True,
              help="Run no background worker here (when `callproof worker` runs apart).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, threads: int,
          behind_proxy: bool, exposed_without_proxy: bool, control_socket: str | None,
          no_worker: bool) -> None:
    """Serve the check page, the API and the console with gunicorn.

    One `callproof worker` runs beside the server (a child process) for the background duties —
    integration, checkpoints, witnesses, alerts — unless --no-worker says they run elsewhere.
    """
    if behind_proxy and exposed_without_proxy:
        _refuse("--behind-proxy and --exposed-without-proxy contradict each other; pass one")
    if not (behind_proxy or exposed_without_proxy) and not is_loopback(host):
        _refuse(f"refusing to serve on {host}: it is not a loopback address, and without a TLS "
                "proxy in front slow clients can tie up every worker and nothing is encrypted; "
                "put deploy/nginx/callproof.conf in front and pass --behind-proxy "
                "(or --exposed-without-proxy)")
    for warning in proxy_warnings(behind_proxy, host):
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    _serve(data_dir(ctx), host, port, workers, threads=threads, behind_proxy=behind_proxy,
           control_socket=control_socket, embedded_worker=not no_worker)


class _Refused(click.ClickException):
    """One line on stderr and exit status 2 (a configuration problem)."""

    exit_code = EXIT_ERROR


def _refuse(message: str) -> NoReturn:
    raise _Refused(message)


def is_loopback(host: str) -> bool:
    """True when every address ``host`` names is a loopback address."""
    import ipaddress
    import socket

    name = host.strip().removeprefix("[").removesuffix("]")
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        found = {info[4][0] for info in socket.getaddrinfo(name, None)}
    except (OSError, UnicodeError):
        return False
    return bool(found) and all(ipaddress.ip_address(str(a).split("%")[0]).is_loopback
                               for a in found)


def proxy_warnings(behind_proxy: bool, host: str) -> list[str]:
    """What the proxy settings leave open, one line each (issue 13 item 9)."""
    import os

    if not behind_proxy:
        return []
    found = []
    hops = os.environ.get("CALLPROOF_TRUSTED_PROXIES", "0").strip() or "0"
    trusted = os.environ.get("CALLPROOF_TRUSTED_PROXY_ADDRESSES", "").strip()
    if hops == "0" and not trusted:
        found.append("CALLPROOF_TRUSTED_PROXIES is 0: every customer will share the proxy's "
                     "address for the limits; set CALLPROOF_TRUSTED_PROXY_ADDRESSES to the "
                     "proxy's address")
    elif not trusted and not is_loopback(host):
        found.append("CALLPROOF_TRUSTED_PROXY_ADDRESSES is not set: any peer that reaches "
                     f"{host} can choose its address with X-Forwarded-For; name the proxy, and "
                     "let only the proxy reach this port")
    if os.environ.get("CALLPROOF_HTTPS") != "1":
        found.append("CALLPROOF_HTTPS is not 1: cookies are not Secure and HSTS is not sent; "
                     "set it when the proxy terminates TLS")
    return found


def gunicorn_settings(host: str, port: int, workers: int = WORKERS, threads: int = THREADS, *,
                      behind_proxy: bool = False,
                      control_socket: str | None = None) -> dict[str, Any]:
    """Gunicorn's settings for one instance (benchmarks/bench_web.py runs its hello-world app
    with the same)."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread" if threads > 1 else "sync",
        "threads": threads,
        "timeout": TIMEOUT,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "keepalive": KEEPALIVE_BEHIND_PROXY if behind_proxy else KEEPALIVE_DIRECT,
        # The app alone decides what forwarding headers to trust (CALLPROOF_TRUSTED_PROXIES,
        # CALLPROOF_TRUSTED_PROXY_ADDRESSES); gunicorn's own X-Forwarded-Proto handling is off.
        "forwarded_allow_ips": "",
        # One control socket per instance, or none: gunicorn's default path is shared by every
        # instance of the user, and the first to stop removes the others' socket.
        "control_socket_disable": control_socket is None,
        **({"control_socket": control_socket} if control_socket else {}),
        "proc_name": f"callproof-serve:{port}",
        "accesslog": None,  # no access log: it would keep addresses
        "errorlog": "-",
    }


def _serve(directory: DataDir, host: str, port: int, workers: int, *, threads: int = THREADS,
           behind_proxy: bool = False, control_socket: str | None = None,
           embedded_worker: bool = True) -> None:
    import os

    from gunicorn.app.base import BaseApplication

    from callproof._cli.worker import spawn_embedded, stop_embedded
    from verifier_app import create_app

    os.environ["CALLPROOF_DATA_DIR"] = str(directory.path)
    Deployment.open(directory).store.close()  # fail here, clearly, before forking workers
    settings = gunicorn_settings(host, port, workers, threads, behind_proxy=behind_proxy,
                                 control_socket=control_socket)

    class _App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for name, value in settings.items():
                self.cfg.set(name, value)

        def load(self) -> Any:
            return create_app()

    child = spawn_embedded(directory.path) if embedded_worker else None  # one per serve
    try:
        _App().run()
    finally:
        if child is not None:
            stop_embedded(child)
