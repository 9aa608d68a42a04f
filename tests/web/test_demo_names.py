"""The demo's agents and departments in the customer's language (issue 14, item 3): `callproof
init` gives them their zh-Hant and zh-Hans names, and the Chinese sentences put no space
between the department, 的 and the name."""

from __future__ import annotations

import pytest

from verifier_app import services

from .conftest import Web
from .test_check_experience import follow, submit
from .test_public import issue, right_word, visible_text

#: What the word page and the confirmed page say of the demo's first agent, per language.
SAID = {
    "en": ("The caller is Mei Lin, Customer Care.",
           "You are talking to Mei Lin, Customer Care, about: A payment for your order did not "
           "go through."),
    "zh-Hant": ("來電者是客服部的林美玲。",
                "和您通話的是客服部的林美玲，來電事由：您訂單的付款沒有成功。"),
    "zh-Hans": ("来电者是客服部的林美玲。",
                "和您通话的是客服部的林美玲，来电事由：您订单的付款没有成功。"),
}


def test_init_gives_the_demo_agents_their_chinese_names(web: Web) -> None:
    with web.app.app_context():
        agents = {a.agent_id: a for a in services().admin.agents()}
    assert [(agents[i].name_in("zh-Hant"), agents[i].department_in("zh-Hant"),
             agents[i].name_in("zh-Hans"), agents[i].department_in("zh-Hans"))
            for i in ("a-001", "a-002", "a-003")] == [
        ("林美玲", "客服部", "林美玲", "客服部"),
        ("陳偉", "帳務部", "陈伟", "账务部"),
        ("王莎拉", "配送部", "王莎拉", "配送部"),
    ]


@pytest.mark.parametrize("lang", list(SAID))
def test_the_demo_call_names_its_caller_in_the_pages_language(web: Web, lang: str) -> None:
    call = issue(web)
    client = web.client
    follow(client, submit(client, "/verify", lang, code=call.code))
    word_page = follow(client, submit(client, "/verify/number", lang, answer="yes",
                                      t=call.ticket_id))
    caller, confirmed = SAID[lang]
    assert caller in visible_text(word_page.get_data(as_text=True))
    done = follow(client, submit(client, "/verify/word", lang, word=right_word(web, call),
                                 t=call.ticket_id))
    assert confirmed in visible_text(done.get_data(as_text=True))
