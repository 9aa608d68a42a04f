"""The voice line in the agent registry (transfer target, team queue), on the notice card and on
the check page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callproof.config import DataDir
from callproof.notice import card_for, render_notice
from verifier_app import create_app, services

from ..cli._helpers import callproof_over, ok, refused


def test_agents_get_a_transfer_target_and_a_queue(tmp_path: Path) -> None:
    run = callproof_over(tmp_path / "data", "")
    said = ok(run("agents", "set", "a-001", "--transfer-to", "sip:mei.lin@pbx.shop.example",
                  "--queue", "+886 2 2345 6700")).output
    assert "transfer to sip:mei.lin@pbx.shop.example, queue +886223456700" in said
    ok(run("agents", "add", "a-009", "Lin Yu", "--transfer-to", "+886223456709"))
    routes = {r["id"]: r for r in json.loads(ok(run("voice", "routes", "--json")).output)}
    assert routes["a-001"] == {"id": "a-001", "transfer_target": "sip:mei.lin@pbx.shop.example",
                               "queue": "+886223456700"}
    assert routes["a-009"]["transfer_target"] == "+886223456709"
    # A target that is neither a SIP URI nor a number is refused, and nothing changes.
    refused(run("voice", "route", "a-001", "--transfer-to", "mei lin"), "must be a SIP URI")
    refused(run("voice", "route", "a-001", "--queue", "<sip:x@y>"), "must be a SIP URI")
    refused(run("voice", "route", "nobody", "--queue", "+886223456700"), "no agent")
    again = {r["id"]: r for r in json.loads(ok(run("voice", "routes", "--json")).output)}
    assert again == routes
    # Only the company's own PBX and numbers ([voice] transfer_allowed in config.toml).
    refused(run("voice", "route", "a-001", "--transfer-to", "sip:mei@evil.example"),
            "transfer_allowed")
    refused(run("agents", "set", "a-001", "--queue", "+886912000000"), "transfer_allowed")
    refused(run("agents", "add", "a-010", "Wu Fang", "--transfer-to", "+12025550123"),
            "transfer_allowed")
    assert "a-010" not in {a["id"] for a in json.loads(ok(run("agents", "list", "--json")).output)}
    assert {r["id"]: r for r in json.loads(ok(run("voice", "routes", "--json")).output)} == \
        routes
    ok(run("voice", "route", "a-001", "--transfer-to", ""))
    after = {r["id"]: r for r in json.loads(ok(run("voice", "routes", "--json")).output)}
    assert after["a-001"]["transfer_target"] is None and after["a-001"]["queue"]
    # The name options of `agents set` still work beside them.
    ok(run("agents", "set", "a-001", "--department", "Billing"))


def _with_voice_number(path: Path, number: str) -> None:
    config = path / "config.toml"
    text = config.read_text("utf-8")
    assert "\n[voice]\n" in text  # the demo config lists its allowed transfer targets there
    config.write_text(text.replace("\n[voice]\n", f'\n[voice]\nnumber = "{number}"\n', 1),
                      "utf-8")


def test_the_notice_card_names_the_voice_line_beside_the_web_address(tmp_path: Path) -> None:
    run = callproof_over(tmp_path / "data", "")
    company = DataDir(tmp_path / "data").load().company
    assert not any("voice line" in r for r in card_for(company, "en").rules)
    card = card_for(company, "zh-Hant", voice_number="02 2345 6799")
    assert "語音查證專線 02 2345 6799" in card.rules[2]
    assert "语音查证专线" in card_for(company, "zh-Hans", voice_number="1").rules[2]
    html = render_notice(company, "en", "html", voice_number="+886 2 2345 6799").decode()
    assert "Call our voice line, +886 2 2345 6799, from your own phone" in html
    _with_voice_number(tmp_path / "data", "+886 2 2345 6799")
    svg = ok(run("notice", "--lang", "en", "--format", "svg")).output
    assert "voice line" in svg


@pytest.mark.parametrize("lang, says", [("en", "Call our voice line"),
                                        ("zh-Hant", "語音查證專線"), ("zh-Hans", "语音查证专线")])
def test_the_check_page_names_the_voice_line(tmp_path: Path, lang: str, says: str) -> None:
    callproof_over(tmp_path / "data", "")  # initialised
    app = create_app({"DATA_DIR": str(tmp_path / "data"), "TESTING": True})
    try:
        page = app.test_client().get(f"/?lang={lang}").get_data(as_text=True)
        assert says not in page  # no voice line configured: not named
        _with_voice_number(tmp_path / "data", "+886 2 2345 6799")
        app2 = create_app({"DATA_DIR": str(tmp_path / "data"), "TESTING": True})
        page = app2.test_client().get(f"/?lang={lang}").get_data(as_text=True)
        assert says in page and 'href="tel:+886223456799"' in page
        with app2.app_context():
            services().deployment.store.close()
    finally:
        with app.app_context():
            services().deployment.store.close()
