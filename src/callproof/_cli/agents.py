"""`callproof agents`: the agent registry. The names customers see on the check page come from
here, and only an enabled agent is named on a new ticket."""

from __future__ import annotations

from collections.abc import Callable

import click
from rich.console import Console
from rich.table import Table

from callproof._cli._common import add_enable_disable, deployment, emit
from callproof._cli.password import new_password
from callproof._cli.voice import route_options
from callproof.admin import NAME_LANGUAGES, Admin, Agent


@click.group()
def agents() -> None:
    """The agent registry: names customers see come from here."""


def _name_options(command: Callable[..., None]) -> Callable[..., None]:
    """The texts per language that ``add`` and ``set`` take."""
    for option in reversed((
            click.option("--name-zh-Hant", "name_zh_hant",
                         help="The name on pages in Traditional Chinese (default: NAME)."),
            click.option("--name-zh-Hans", "name_zh_hans",
                         help="The name on pages in Simplified Chinese (default: NAME)."),
            click.option("--department", help="The team, shown to the customer."),
            click.option("--department-zh-Hant", "department_zh_hant",
                         help="The team in Traditional Chinese (default: --department)."),
            click.option("--department-zh-Hans", "department_zh_hans",
                         help="The team in Simplified Chinese (default: --department)."),
            click.option("--json", "as_json", is_flag=True, help="Print the agent as JSON."))):
        command = option(command)
    return command


def _texts(hant: str | None, hans: str | None) -> dict[str, str]:
    return {lang: text for lang, text in (("zh-Hant", hant), ("zh-Hans", hans))
            if text is not None}


def _show(agent: Agent, as_json: bool, done: str) -> None:
    if as_json:
        emit(agent.to_dict())
        return
    others = [f"{agent.names[lang]} ({lang})" for lang in NAME_LANGUAGES if lang in agent.names]
    click.echo(f"{done} agent {agent.agent_id} ({', '.join([agent.name, *others])})")


@agents.command("add")
@click.argument("agent_id")
@click.argument("name")
@_name_options
@route_options  # the voice line's --transfer-to / --queue (callproof voice)
@click.pass_context
def agents_add(ctx: click.Context, agent_id: str, name: str, department: str | None,
               name_zh_hant: str | None, name_zh_hans: str | None,
               department_zh_hant: str | None, department_zh_hans: str | None,
               as_json: bool) -> None:
    """Register AGENT_ID with the display NAME (and its texts in Chinese, if they differ)."""
    agent = Admin(deployment(ctx)).add_agent(
        agent_id, name, department=department,
        names=_texts(name_zh_hant, name_zh_hans),
        department_names=_texts(department_zh_hant, department_zh_hans))
    _show(agent, as_json, "added")


@agents.command("set")
@click.argument("agent_id")
@click.option("--name", help="The display name.")
@_name_options
@route_options  # the voice line's --transfer-to / --queue (callproof voice)
@click.pass_context
def agents_set(ctx: click.Context, agent_id: str, name: str | None, department: str | None,
               name_zh_hant: str | None, name_zh_hans: str | None,
               department_zh_hant: str | None, department_zh_hans: str | None,
               as_json: bool) -> None:
    """Change AGENT_ID's name, department or their texts in Chinese.

    Options left out stay as they are; an empty text ("") removes a department or a text in
    one language (the given name then shows there). New tickets carry the new name.
    """
    if all(v is None for v in (name, department, name_zh_hant, name_zh_hans,
                               department_zh_hant, department_zh_hans)):
        raise click.UsageError("say what to change: --name, --department, --name-zh-Hant, …")
    agent = Admin(deployment(ctx)).set_agent(
        agent_id, name=name, department=department,
        names=_texts(name_zh_hant, name_zh_hans),
        department_names=_texts(department_zh_hant, department_zh_hans))
    _show(agent, as_json, "changed")


@agents.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def agents_list(ctx: click.Context, as_json: bool) -> None:
    """Every agent, enabled or not."""
    rows = [a.to_dict() for a in Admin(deployment(ctx)).agents()]
    if as_json:
        emit(rows)
        return
    table = Table("id", "name", "department", "enabled")
    for r in rows:
        name = " / ".join([r["name"], *r["names"].values()])
        department = " / ".join([r["department"], *r["department_names"].values()]) \
            if r["department"] else ""
        table.add_row(r["id"], name, department, "yes" if r["enabled"] else "no")
    Console().print(table)


@agents.command("set-password")
@click.argument("agent_id")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (never the password).")
@click.pass_context
def agents_set_password(ctx: click.Context, agent_id: str, password_stdin: bool,
                        as_json: bool) -> None:
    """Set AGENT_ID's console password (hidden prompt, or --password-stdin)."""
    from callproof.agent_auth import AgentPasswords

    AgentPasswords(deployment(ctx)).set(agent_id, new_password(password_stdin))
    if as_json:
        emit({"agent_id": agent_id, "password_set": True})
    else:
        click.echo(f"password set for {agent_id}")


add_enable_disable(
    agents, "agent_id", "agent",
    lambda ctx, agent_id, enabled: Admin(deployment(ctx)).set_agent_enabled(agent_id, enabled),
    disable_help="Stop AGENT_ID from being named on new tickets.",
    enable_help="Allow AGENT_ID on new tickets again.")
