"""`callproof voice`: the voice line (spec/voice-line.md) — where verified customers are put
back through to, and its prompts' audio. The SIP adapter adds ``voice sip`` here."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from callproof._cli._common import deployment, emit


@click.group()
def voice() -> None:
    """The voice line: agents' transfer targets, and its prompts' audio."""


def _set_route(ctx: click.Context, agent_id: str, transfer_to: str | None,
               queue: str | None) -> dict[str, Any]:
    from callproof.voice.routes import Routes

    route = Routes(deployment(ctx)).set(agent_id, transfer_target=transfer_to, queue=queue)
    return {"id": agent_id, **route.to_dict()}


_TRANSFER_HELP = ("Where the voice line puts the agent's verified customers back through to: "
                  "a SIP URI (sip:name@host) or an E.164 number that config.toml's [voice] "
                  "transfer_allowed lists; \"\" for none.")
_QUEUE_HELP = ("The agent's team queue, for when the agent is on another call: a SIP URI or "
               "an E.164 number that [voice] transfer_allowed lists; \"\" for none.")


@voice.command("route")
@click.argument("agent_id")
@click.option("--transfer-to", "transfer_to", help=_TRANSFER_HELP)
@click.option("--queue", help=_QUEUE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def voice_route(ctx: click.Context, agent_id: str, transfer_to: str | None, queue: str | None,
                as_json: bool) -> None:
    """Set AGENT_ID's transfer target and team queue (options left out stay as they are)."""
    if transfer_to is None and queue is None:
        raise click.UsageError("say what to set: --transfer-to and/or --queue")
    shown = _set_route(ctx, agent_id, transfer_to, queue)
    if as_json:
        emit(shown)
        return
    click.echo(f"agent {agent_id}: transfer to {shown['transfer_target'] or '(none)'}, "
               f"queue {shown['queue'] or '(none)'}")


@voice.command("routes")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def voice_routes(ctx: click.Context, as_json: bool) -> None:
    """Every agent's transfer target and team queue."""
    from callproof.voice.routes import Routes

    rows = [{"id": agent_id, **route.to_dict()}
            for agent_id, route in sorted(Routes(deployment(ctx)).all().items())]
    if as_json:
        emit(rows)
        return
    table = Table("agent", "transfer to", "queue")
    for r in rows:
        table.add_row(r["id"], r["transfer_target"] or "", r["queue"] or "")
    Console().print(table)


@voice.command("prompts")
@click.option("--cache", "cache", type=click.Path(file_okay=False, path_type=Path),
              help="The prompt cache (default: voice-cache in the data dir).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def voice_prompts(ctx: click.Context, cache: Path | None, as_json: bool) -> None:
    """Render every static prompt in every language into the cache (else done on first use)."""
    from callproof.voice.machine import Say
    from callproof.voice.prompts import PromptAudio
    from callproof.voice.texts import STATIC_KEYS, VOICE_LANGUAGES, text

    dep = deployment(ctx)
    recorded = dep.config.voice.recorded_prompts
    audio = PromptAudio(cache or dep.data_dir.path / "voice-cache",
                        dep.data_dir.path / recorded if recorded else None)
    made = 0
    for key in sorted(STATIC_KEYS):
        for lang in VOICE_LANGUAGES:
            audio.wav_for(Say(key, lang, text(key, lang)))
            made += 1
    if as_json:
        emit({"prompts": made, "cache_dir": str(audio.cache_dir),
              "languages": list(VOICE_LANGUAGES)})
        return
    click.echo(f"{made} prompts ready in {audio.cache_dir}")


@voice.command("sip")
@click.option("--listen", default="127.0.0.1:5070", show_default=True,
              help="HOST:PORT to answer SIP on (UDP; port 0: any free port). Anything but "
                   "loopback needs --exposed-to-trunk.")
@click.option("--exposed-to-trunk", is_flag=True,
              help="Allow a non-loopback --listen address: the SIP trunk or PBX reaches the "
                   "line there (let only the trunk's addresses through to it).")
@click.option("--trunk", "trunks", multiple=True, metavar="ADDR[,ADDR…]",
              help="The SIP trunk's or PBX's IP addresses or networks (e.g. 192.0.2.10,"
                   "192.0.2.0/28; repeatable): every other peer is ignored, and the trunk's "
                   "P-Asserted-Identity names the caller. Required with --exposed-to-trunk.")
@click.option("--max-calls", default=32, show_default=True, type=click.IntRange(1, 1000),
              help="Calls answered at once; more are answered 486 Busy Here.")
@click.option("--cache", "cache", type=click.Path(file_okay=False, path_type=Path),
              help="The prompt cache (default: voice-cache in the data dir).")
@click.pass_context
def voice_sip(ctx: click.Context, listen: str, exposed_to_trunk: bool, trunks: tuple[str, ...],
              max_calls: int, cache: Path | None) -> None:
    """Answer the voice line's SIP calls (RTP audio, RFC 4733 keys) until stopped.

    A SIP trunk or PBX sends calls to the official number here; each call hears the prompts,
    keys the call code, and a verified customer is put back through to the agent by a REFER.
    """
    import logging
    import sys

    from callproof._cli.serve import is_loopback
    from callproof.voice import sip

    host, sep, port_text = listen.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise click.BadParameter("give HOST:PORT, e.g. 127.0.0.1:5070", param_hint="--listen")
    if not exposed_to_trunk and not is_loopback(host):
        raise click.UsageError(
            f"refusing to answer SIP on {host}: it is not a loopback address; anyone who can "
            "reach it could call the line directly and present any calling number. Put it "
            "where only the SIP trunk reaches it and pass --exposed-to-trunk")
    try:
        trunk_list = sip.parse_trunks(trunks) if trunks else None
    except ValueError:
        raise click.BadParameter("give IP addresses or networks, e.g. 192.0.2.10,192.0.2.0/28",
                                 param_hint="--trunk") from None
    if not is_loopback(host) and trunk_list is None:
        raise click.UsageError(
            f"--exposed-to-trunk on {host} needs --trunk ADDR[,ADDR…]: the trunk's addresses, "
            "so that only the trunk's calls are answered and no one else can present a "
            "calling number")
    dep = deployment(ctx)
    recorded = dep.config.voice.recorded_prompts
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(asctime)s] [%(levelname)s] %(message)s",
                                           "%Y-%m-%d %H:%M:%S %z"))
    logger = logging.getLogger("callproof.voice")  # the line's and the check's log lines
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    def ready(port: int) -> None:
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"voice line (SIP) listening on udp:{shown}:{port} — Ctrl-C stops it")
        sys.stdout.flush()

    sip.serve(dep, host=host, port=int(port_text), max_calls=max_calls,
              cache_dir=cache or dep.data_dir.path / "voice-cache",
              recorded_dir=(dep.data_dir.path / recorded) if recorded else None, ready=ready,
              trunks=[str(net) for net in trunk_list] if trunk_list else None)


def _check_route(ctx: click.Context, transfer_to: str | None, queue: str | None) -> None:
    """Refuse a target outside ``[voice] transfer_allowed`` before anything is written."""
    from callproof.voice.routes import check_target

    allowed = deployment(ctx).config.voice.transfer_allowed
    if transfer_to and transfer_to.strip():
        check_target(transfer_to, "the transfer target", allowed)
    if queue and queue.strip():
        check_target(queue, "the queue", allowed)


def route_options(command: Callable[..., None]) -> Callable[..., None]:
    """``--transfer-to`` and ``--queue`` for ``callproof agents add`` / ``set``: the command runs
    as before, then the agent's route is set (a ``set`` naming only these skips the rest)."""

    @functools.wraps(command)
    def run(*args: Any, transfer_to: str | None = None, queue: str | None = None,
            **kwargs: Any) -> None:
        ctx = click.get_current_context()
        _check_route(ctx, transfer_to, queue)  # a refused target: nothing changes, not even
        only_route = ctx.info_name == "set" and all(  # the agent added or renamed beside it
            v is None or v is False for k, v in kwargs.items() if k != "agent_id")
        if not only_route or (transfer_to is None and queue is None):
            command(*args, **kwargs)
        if transfer_to is not None or queue is not None:
            shown = _set_route(ctx, kwargs["agent_id"], transfer_to, queue)
            if not kwargs.get("as_json"):
                click.echo(f"agent {shown['id']}: transfer to "
                           f"{shown['transfer_target'] or '(none)'}, queue "
                           f"{shown['queue'] or '(none)'}")

    run = click.option("--queue", help=_QUEUE_HELP)(run)
    return click.option("--transfer-to", "transfer_to", help=_TRANSFER_HELP)(run)
