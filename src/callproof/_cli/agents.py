"""`callproof agents`: the agent registry. The names customers see on the check page come from
here, and only an enabled agent is named on a new ticket."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from callproof._cli._common import add_enable_disable, deployment, emit
from callproof._cli.password import new_password
from callproof.admin import Admin


@click.group()
def agents() -> None:
    """The agent registry: names customers see come from here."""


@agents.command("add")
@click.argument("agent_id")
@click.argument("name")
@click.option("--department", help="The team, shown to the customer.")
@click.pass_context
def agents_add(ctx: click.Context, agent_id: str, name: str, department: str | None) -> None:
    """Register AGENT_ID with the display NAME."""
    agent = Admin(deployment(ctx)).add_agent(agent_id, name, department=department)
    click.echo(f"added agent {agent.agent_id} ({agent.name})")


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
        table.add_row(r["id"], r["name"], r["department"] or "", "yes" if r["enabled"] else "no")
    Console().print(table)


@agents.command("set-password")
@click.argument("agent_id")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.pass_context
def agents_set_password(ctx: click.Context, agent_id: str, password_stdin: bool) -> None:
    """Set AGENT_ID's console password (hidden prompt, or --password-stdin)."""
    from callproof.agent_auth import AgentPasswords

    AgentPasswords(deployment(ctx)).set(agent_id, new_password(password_stdin))
    click.echo(f"password set for {agent_id}")


add_enable_disable(
    agents, "agent_id", "agent",
    lambda ctx, agent_id, enabled: Admin(deployment(ctx)).set_agent_enabled(agent_id, enabled),
    disable_help="Stop AGENT_ID from being named on new tickets.",
    enable_help="Allow AGENT_ID on new tickets again.")
