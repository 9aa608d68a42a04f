"""Names per language (experience issue 14 item 3): the agent registry's names and departments
in zh-Hant and zh-Hans, from the CLI to the check step, and the company's names on the notice
card. Pages in a language without a name show the given one."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from callproof.admin import Admin
from callproof.checkflow import new_client_token
from callproof.config import Company
from callproof.errors import InputError, NotFound
from callproof.notice import card_for
from callproof.protocol import events
from callproof.store.events import read_events

from .cli._helpers import Run, callproof_over, ok, refused
from .conftest import World


def _events(w: World, type_: str) -> list[events.Event]:
    with w.deployment.store.read() as conn:
        return [e for e in read_events(conn, w.deployment.issuer_id) if e.type == type_]


def test_an_agent_added_with_names_per_language(world: World) -> None:
    w = world
    agent = w.admin.add_agent("a-017", "Mei Lin", department="Customer Care",
                              names={"zh-Hant": "林美玲", "zh-Hans": "林美玲"},
                              department_names={"zh-Hant": "客服部"})
    assert (agent.name_in("zh-Hant"), agent.department_in("zh-Hant")) == ("林美玲", "客服部")
    # No department in Simplified Chinese, no name in English: the given ones.
    assert (agent.name_in("en"), agent.department_in("zh-Hans")) == ("Mei Lin", "Customer Care")
    (stored,) = [a for a in w.admin.agents() if a.agent_id == "a-017"]
    assert stored == agent
    (added,) = [e for e in _events(w, events.AGENT_ADDED) if e.data["agent_id"] == "a-017"]
    assert added.data["names"] == {"zh-Hant": "林美玲", "zh-Hans": "林美玲"}
    assert added.data["department_names"] == {"zh-Hant": "客服部"}


def test_set_changes_only_what_it_names_and_empty_text_removes(world: World) -> None:
    w = world
    # The demo's a-001 comes with Chinese names: an empty text removes each.
    agent = w.admin.set_agent("a-001", names={"zh-Hant": "", "zh-Hans": ""},
                              department_names={"zh-Hant": "", "zh-Hans": ""})
    assert agent.names == {} and agent.department_names == {}
    w.admin.set_agent("a-001", names={"zh-Hant": "林美玲"}, department_names={"zh-Hans": "客服"})
    agent = w.admin.set_agent("a-001", names={"zh-Hans": "林美玲"})
    assert agent.names == {"zh-Hant": "林美玲", "zh-Hans": "林美玲"}
    assert agent.department_names == {"zh-Hans": "客服"} and agent.name == "Mei Lin"
    agent = w.admin.set_agent("a-001", names={"zh-Hant": ""}, name="Mei-Lin Chen")
    assert agent.names == {"zh-Hans": "林美玲"} and agent.name == "Mei-Lin Chen"
    # No department, no department names.
    agent = w.admin.set_agent("a-001", department="")
    assert agent.department is None and agent.department_names == {}
    assert w.admin.agent("a-001") == agent
    assert len(_events(w, events.AGENT_CHANGED)) == 5
    # The same again changes nothing and logs nothing.
    w.admin.set_agent("a-001", department="")
    assert len(_events(w, events.AGENT_CHANGED)) == 5


@pytest.mark.parametrize(("change", "says"), [
    ({"names": {"fr": "Mei"}}, "zh-Hant, zh-Hans only"),
    ({"names": {"zh-Hant": "x" * 129}}, "1–128 printable"),
    ({"names": {"zh-Hant": "林\n美"}}, "1–128 printable"),
    ({"name": ""}, "1–128 printable"),
], ids=["unknown-language", "too-long", "unprintable", "empty-name"])
def test_bad_names_are_refused_and_change_nothing(world: World, change: dict[str, object],
                                                  says: str) -> None:
    before = world.admin.agent("a-001")
    with pytest.raises(InputError, match=says):
        world.admin.set_agent("a-001", **change)  # type: ignore[arg-type]
    assert world.admin.agent("a-001") == before


def test_a_chinese_department_needs_a_department(world: World) -> None:
    with pytest.raises(InputError, match="needs the department"):
        world.admin.add_agent("a-018", "Chen", department_names={"zh-Hant": "客服部"})
    with pytest.raises(NotFound):
        world.admin.set_agent("a-404", name="Nobody")


def test_the_check_step_carries_the_registrys_names(world: World) -> None:
    w = world
    w.admin.set_agent("a-001", names={"zh-Hant": "林美"}, department_names={"zh-Hant": "客服處"})
    call = w.issuer.issue(agent_id="a-001", reason="order_delivery")
    client = new_client_token()
    step = w.flow.lookup(call.code, client, client_address="203.0.113.9", lang="zh-Hant")
    assert step.agent_names == {"zh-Hant": "林美", "zh-Hans": "林美玲"}  # the demo's, then set
    assert step.department_names == {"zh-Hant": "客服處", "zh-Hans": "客服部"}
    assert step.ticket.agent_name == "Mei Lin"  # the ticket keeps what it was signed with


def test_the_cli_adds_and_sets_names(tmp_path: Path, backend: str) -> None:
    run: Run = callproof_over(tmp_path / "data", backend)
    out = ok(run("agents", "add", "a-017", "Mei Lin", "--name-zh-Hant", "林美玲",
                 "--name-zh-Hans", "林美玲", "--department", "Customer Care",
                 "--department-zh-Hant", "客服部", "--department-zh-Hans", "客服中心")).output
    assert "added agent a-017 (Mei Lin, 林美玲 (zh-Hant), 林美玲 (zh-Hans))" in out
    shown = json.loads(ok(run("agents", "set", "a-017", "--department-zh-Hans", "",
                              "--json")).output)
    assert shown["department_names"] == {"zh-Hant": "客服部"}
    listed = json.loads(ok(run("agents", "list", "--json")).output)
    (mine,) = [a for a in listed if a["id"] == "a-017"]
    assert mine["names"] == {"zh-Hant": "林美玲", "zh-Hans": "林美玲"}
    refused(run("agents", "set", "a-017"), "say what to change", code=2)
    refused(run("agents", "set", "a-404", "--name", "X"), "no agent 'a-404'")
    refused(run("agents", "add", "a-019", "X", "--department-zh-Hant", "客服"),
            "needs the department")


COMPANY = Company(name="Example Shop", official_number="+886 2 1234 5678",
                  check_page="shop.example/call", country="TW", hotline="165")


def test_the_notice_card_names_the_company_in_the_cards_language() -> None:
    named = dataclasses.replace(COMPANY, name_zh_hant="範例商店", name_zh_hans="范例商店")
    assert card_for(named, "zh-Hant").title == "是 範例商店 打給您嗎？"
    assert card_for(named, "zh-Hans").title == "是 范例商店 打给您吗？"
    assert card_for(named, "en").title == "Is Example Shop calling you?"
    # No Chinese name: the given one.
    assert card_for(COMPANY, "zh-Hant").title == "是 Example Shop 打給您嗎？"


def test_admin_open_on_the_data_dir_sees_the_names(world: World) -> None:
    world.admin.set_agent("a-002", names={"zh-Hans": "陈伟"})
    again = Admin(world.deployment).agent("a-002")
    assert again is not None and again.name_in("zh-Hans") == "陈伟"
