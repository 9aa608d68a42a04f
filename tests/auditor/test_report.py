"""The auditor's report: made from a bundle alone, it finds a planted scam wave and rogue agent.

A small month of traffic is generated once (tests/auditor/traffic.py) and exported by the CLI; the
report is rendered from the bundle in three languages, checked as text, and opened in Debian's
Chromium (skipped without it, unless CALLPROOF_REQUIRE_BROWSER=1) for a screenshot each.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import string
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from callproof._cli import cli
from callproof.auditor.facts import ReportOptions, read_facts
from callproof.auditor.report import STRINGS, render_report
from callproof.protocol import events
from callproof.protocol.languages import LANGUAGES as LANGS
from tests.auditor.traffic import Month, Plan, make_month

ROOT = Path(__file__).resolve().parent.parent.parent
AXE = Path(os.environ.get("CALLPROOF_AXE_JS", ROOT / ".cache/axe-core/axe.min.js"))
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Month:
    return make_month(tmp_path_factory.mktemp("month"), Plan.small())


@pytest.fixture(scope="module")
def reports(month: Month, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The month's report in each language, written by `callproof audit report`."""
    out = tmp_path_factory.mktemp("reports")
    written = {}
    for lang in LANGS:
        path = out / f"audit-report-{lang}.html"
        done = CliRunner().invoke(cli, ["audit", "report", str(month.bundle), "--out", str(path),
                                        "--lang", lang, "--log-key", month.vkey])
        assert done.exit_code == 0, done.output
        assert "the bundle verifies" in done.output
        written[lang] = path
    return written


def _section(html: str, key: str) -> str:
    found = re.search(rf'<section aria-labelledby="h-{key}">(.*?)</section>', html, re.S)
    assert found, f"no {key} section"
    return found.group(1)


def _self_contained(html: str) -> None:
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"https?://", html), "no address at all, not even in a namespace"
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert "url(" not in html and "@import" not in html
    assert "default-src 'none'" in html  # and the browser is told to load nothing


def test_the_report_names_the_wave_and_the_rogue_agent(month: Month,
                                                       reports: dict[str, Path]) -> None:
    html = reports["en"].read_text("utf-8")
    _self_contained(html)
    assert html.startswith("<!DOCTYPE html>\n<html lang=\"en\">")
    # The verdict comes first.
    order = [html.index(f'id="h-{key}"') for key in ("verdict", "anomalies", "calls")]
    assert order == sorted(order)
    verdict = _section(html, "verdict")
    assert 'class="verdict pass"' in verdict and "The bundle verifies" in verdict
    assert "pinned by the auditor" in verdict
    anomalies = _section(html, "anomalies")
    rogue = month.plan.rogue_agent
    assert f"Agent {rogue} issued far more calls than colleagues" in anomalies
    assert anomalies.count("issued far more calls") == 1  # no honest agent is flagged
    wave = month.wave_start
    assert f"{wave:%Y-%m-%d %H:00}–{wave.hour + 1:02d}:00: " in anomalies
    assert anomalies.count("Burst of failed lookups") == 1
    assert f"By agent: {rogue} (" in anomalies  # the night calls are all the rogue's
    # The charts: inline SVG with a title and a description, and the numbers in a table.
    assert html.count('<svg class="chart wide"') >= 6  # and each drawn again for a phone
    assert html.count('<svg class="chart phone"') == html.count('<svg class="chart wide"')
    assert html.count("<title id=") == html.count('<svg class="chart ')
    failed = _section(html, "failed")
    assert f"{wave:%m-%d %H:00} · " in failed and 'class="flag"' in failed
    agents = _section(html, "agents")
    assert re.search(rf'<tr class="flag"><th scope="row">{rogue}</th>', agents)
    assert "h-reveals" not in html  # no reveal events in this log: no section
    assert "Scam reports by script" in html and "A transfer or a loan" in html


def test_the_report_adds_no_personal_data(month: Month, reports: dict[str, Path]) -> None:
    html = "".join(p.read_text("utf-8") for p in reports.values())
    assert "+886" not in html and "eyJ" not in html  # no numbers, no tickets
    for name in ("Mei Lin", "Chen Wei", "Sarah Wang", "Agent 00"):
        assert name not in html  # agents appear by id only


@pytest.mark.parametrize("lang", ["zh-Hant", "zh-Hans"])
def test_the_report_in_chinese(month: Month, reports: dict[str, Path], lang: str) -> None:
    html = reports[lang].read_text("utf-8")
    _self_contained(html)
    assert f'<html lang="{lang}">' in html
    words = STRINGS[lang]
    title = words["title"].format(issuer="shop.example")
    assert f"<h1>{title}</h1>" in html
    anomalies = _section(html, "anomalies")
    rogue = month.plan.rogue_agent
    assert words["a.far_above.title"].format(agent=rogue) in anomalies
    assert f"{month.wave_start:%Y-%m-%d %H:00}" in anomalies
    assert words["a.burst.title"] in anomalies and words["pass"] in html
    for english in ("Calls per day", "Anomalies", "Working hours", "Show the numbers"):
        assert english not in html
    assert ("稽核報告" if lang == "zh-Hant" else "审计报告") in html


def test_a_tampered_bundle_is_reported_as_failing(month: Month, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(month.bundle, bundle)
    lines = (bundle / "entries.jsonl").read_bytes().splitlines(keepends=True)
    del lines[len(lines) // 2]  # one entry removed
    (bundle / "entries.jsonl").write_bytes(b"".join(lines))
    out = tmp_path / "r.html"
    done = CliRunner().invoke(cli, ["audit", "report", str(bundle), "--out", str(out),
                                    "--log-key", month.vkey])
    assert done.exit_code == 0 and "does NOT verify" in done.output
    verdict = _section(out.read_text("utf-8"), "verdict")
    assert 'class="verdict fail"' in verdict
    assert "<li>line " not in verdict  # a missing line has no line of its own
    assert "<li><code>entries.jsonl</code> has " in verdict and "entries are missing" in verdict
    assert '<code class="fcode">tree.missing</code>' in verdict


def test_without_a_pinned_key_the_report_says_so(month: Month) -> None:
    html = render_report(month.bundle, now=NOW)
    verdict = _section(html, "verdict")
    assert "taken from the bundle itself" in verdict and "no log key was pinned" in verdict
    assert "Generated 2026-11-02 17:00" in html  # in the company's zone (Asia/Taipei)


def test_bad_options_are_refused(month: Month, tmp_path: Path) -> None:
    run = CliRunner().invoke
    out = str(tmp_path / "r.html")
    hours = run(cli, ["audit", "report", str(month.bundle), "--out", out, "--hours", "20-8"])
    assert hours.exit_code == 2 and "start before they end" in hours.output
    zone = run(cli, ["audit", "report", str(month.bundle), "--out", out, "--tz", "Mars/Base"])
    assert zone.exit_code == 2 and "unknown time zone 'Mars/Base'" in zone.output
    assert not Path(out).exists()


def test_working_hours_and_zone_change_what_is_after_hours(month: Month) -> None:
    night = read_facts(month.bundle, ReportOptions.parse_hours("00:00-24:00"))
    assert not any(a.kind == "after_hours" for a in night.anomalies)
    assert any(a.kind == "far_above" for a in night.anomalies)  # still far above peers
    utc = read_facts(month.bundle, ReportOptions.parse_hours("08:00-20:00", "UTC"))
    taipei = read_facts(month.bundle)
    assert sum(a.after_hours for a in utc.agents.values()) != \
        sum(a.after_hours for a in taipei.agents.values())


def test_reveals_show_only_when_logged_and_those_without_a_call_are_anomalies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Reveal events (spec/enrolled-proofs.md §6); added here in case this tree predates them.
    monkeypatch.setattr(events, "EVENT_TYPES", events.EVENT_TYPES | {
        "reveal.phrase", "reveal.app_code", "alert.reveal_unconnected", "alert.reveal_capped"})
    at = int(datetime(2026, 10, 5, 3, 0, tzinfo=UTC).timestamp())

    def line(type: str, t: int, **data: Any) -> str:
        return json.dumps({"at": t, "data": data, "iss": "shop.example", "type": type, "v": 1},
                          separators=(",", ":"), sort_keys=True, ensure_ascii=False)

    payload = "eyJhZ3QiOnsiaWQiOiJhLTAwMSJ9fQ"  # {"agt":{"id":"a-001"}}
    lines = [line("ticket.issued", at, ticket=f"x.{payload}.y", ticket_id="t_1"),
             line("ticket.issued", at + 1, ticket=f"x.{payload}.y", ticket_id="t_2"),
             line("ticket.connected", at + 5, ticket_id="t_1"),
             line("reveal.phrase", at + 9, ticket_id="t_1", agent_id="a-001", what=["phrase"],
                  connected=True),
             line("alert.reveal_unconnected", at + 60, ticket_id="t_2", agent_id="a-001",
                  allowed=True),
             line("reveal.app_code", at + 60, ticket_id="t_2", agent_id="a-001",
                  what=["totp"], connected=False),
             line("alert.reveal_unconnected", at + 70, ticket_id="t_2", agent_id="a-001",
                  allowed=False),
             line("alert.reveal_capped", at + 80, ticket_id="t_1", agent_id="a-001",
                  cap="agent_cap")]
    (tmp_path / "entries.jsonl").write_text("\n".join(lines) + "\n")
    facts = read_facts(tmp_path)
    assert facts.agents["a-001"].issued == 2
    found = {a.kind: a.params for a in facts.anomalies}
    assert found["lonely_reveal"] == {"count": "1", "first": "2026-10-05 11:01",
                                      "who": "a-001 (1)"}
    assert found["reveal_refused"]["count"] == "1"  # the allowed one is the reveal above
    assert found["reveal_capped"]["who"] == "a-001 (1)"
    html = render_report(tmp_path, lang="zh-Hant", now=NOW)
    reveals = _section(html, "reveals")
    assert "來電暗語" in reveals and "App 動態碼" in reveals and "來電碼" not in reveals
    assert STRINGS["zh-Hant"]["a.lonely_reveal.title"] in _section(html, "anomalies")
    assert 'class="verdict fail"' in html  # no checkpoint, no keys: it cannot verify



def test_every_language_has_every_word_with_the_same_placeholders() -> None:
    """The words live in data/report.<lang>.json, one file per language: none may lose a key
    or a {placeholder} the page fills in (it would raise, or show the brace)."""
    fields = {lang: {key: sorted(name for _, name, _, _ in string.Formatter().parse(text) if name)
                     for key, text in words.items()} for lang, words in STRINGS.items()}
    assert list(fields) == list(LANGS)
    # A language with singular forms has KEY.one beside KEY (English does; Chinese has none):
    # it may leave out the count, never add a placeholder of its own.
    base = {lang: {k: v for k, v in f.items() if not k.endswith(".one")}
            for lang, f in fields.items()}
    # The verifier's findings (v.*) may leave out an exception's English text ({error}).
    english = {k: [n for n in v if not (k.startswith("v.") and n == "error")]
               for k, v in base["en"].items()}
    for lang in ("zh-Hant", "zh-Hans"):
        assert base[lang].keys() == english.keys()
        assert {k: [n for n in v if n != "error"] for k, v in base[lang].items()} == english
    for lang, found in fields.items():
        for key, names in found.items():
            if key.endswith(".one"):
                assert key.removesuffix(".one") in found, key
                assert set(names) <= set(found[key.removesuffix(".one")]), (lang, key)

# --- in the browser -------------------------------------------------------------------------


#: Each chart drawn on the page: the smallest of its labels' font sizes in CSS px as drawn (the
#: size in the drawing's units times the drawing's scale), its labels cut off by its edges, and
#: its pairs of labels that overlap.
_CHART_LABELS = """() => [...document.querySelectorAll('svg.chart')]
  .filter(svg => svg.getClientRects().length).map(svg => {
    const edge = svg.getBoundingClientRect(), texts = [...svg.querySelectorAll('text')];
    const boxes = texts.map(t => t.getBoundingClientRect());
    const apart = (a, b) => a.right <= b.left + 0.5 || b.right <= a.left + 0.5 ||
                            a.bottom <= b.top + 0.5 || b.bottom <= a.top + 0.5;
    return {chart: svg.querySelector('title').textContent,
            smallest: Math.min(...texts.map(
              t => parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a)),
            cut: texts.filter((t, i) =>
              boxes[i].left < edge.left - 0.5 || boxes[i].right > edge.right + 0.5 ||
              boxes[i].top < edge.top - 0.5 || boxes[i].bottom > edge.bottom + 0.5)
              .map(t => t.textContent),
            overlaps: boxes.flatMap((a, i) => boxes.slice(i + 1).flatMap((b, j) =>
              apart(a, b) ? [] : [[texts[i].textContent, texts[i + 1 + j].textContent]]))};
  })"""


@pytest.mark.parametrize("lang", LANGS)
def test_the_report_in_chromium(browser: Any, month: Month, reports: dict[str, Path],
                                lang: str, tmp_path: Path) -> None:
    shots = Path(os.environ.get("CALLPROOF_SCREENSHOTS", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: None if r.url.startswith("file:") else problems.append(r.url))
    page.goto(reports[lang].as_uri())
    assert page.evaluate("document.documentElement.lang") == lang
    verdict = page.locator("#h-verdict + .verdict .big").inner_text()
    assert verdict.endswith(STRINGS[lang]["pass"])
    anomalies = page.locator("section[aria-labelledby=h-anomalies]").inner_text()
    assert month.plan.rogue_agent in anomalies and f"{month.wave_start:%Y-%m-%d %H:00}" in anomalies
    charts = page.evaluate(_CHART_LABELS)  # the wide drawings
    assert len(charts) >= 6 and all(c["smallest"] >= 10 and not c["cut"] and not c["overlaps"]
                                    for c in charts), charts
    # The style applies under the page's own Content-Security-Policy (not blocked).
    assert page.evaluate("getComputedStyle(document.querySelector('main')).maxWidth") != "none"
    page.screenshot(path=str(shots / f"audit-report-{lang}.png"), full_page=True)
    page.close()
    assert problems == []  # nothing blocked, nothing fetched
    if AXE.is_file():  # axe needs a script in the page: a context that bypasses the CSP
        context = browser.new_context(bypass_csp=True)
        page = context.new_page()
        page.goto(reports[lang].as_uri())
        page.add_script_tag(path=str(AXE))
        found = page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
                 .map(v => ({id: v.id, nodes: v.nodes.map(n => n.target)}))""")
        context.close()
        assert found == []


# --- issue 14 item 23: plural forms, no English in Chinese, a phone, a progress bar ----------

def _visible_text(html: str) -> str:
    import html as entities

    body = html.split("<body>", 1)[1]
    body = re.sub(r"<code>.*?</code>", " ", body, flags=re.S)  # hashes, as they are
    return entities.unescape(re.sub(r"<[^>]+>", " ", body))


#: What a Chinese report may still spell in Latin letters: names of things to type or find —
#: the command and its options, the bundle's files, the log's name, the zone's IANA name, and
#: "App", which Taiwan and the mainland write so.
_IDENTIFIERS = {"App", "Asia", "Taipei", "SHA-", "callproof", "audit", "report", "verify",
                "entries.jsonl", "log.vkey", "log-key", "shop.example", "callproof-log"}


@pytest.mark.parametrize("lang", ["zh-Hant", "zh-Hans"])
def test_the_chinese_report_has_no_english_words(reports: dict[str, Path], lang: str) -> None:
    text = _visible_text(reports[lang].read_text("utf-8"))
    words = set(re.findall(r"[A-Za-z][A-Za-z._-]{2,}", text))
    assert words <= _IDENTIFIERS, words - _IDENTIFIERS
    assert "UTC" not in text  # the time it was made is in the company's zone, named above


def test_counts_of_one_read_as_one(month: Month, reports: dict[str, Path]) -> None:
    from callproof.auditor.bundle import Failure, VerifyReport

    for lang in LANGS:
        assert "(s)" not in reports[lang].read_text("utf-8")
    one = render_report(month.bundle, lang="en", log_key=month.vkey,
                        verdict=VerifyReport(entries=3, failures=[Failure("a test failure", 2)]))
    assert "The bundle does NOT verify: 1 failure</p>" in one
    two = render_report(month.bundle, lang="en", log_key=month.vkey,
                        verdict=VerifyReport(entries=3, failures=[Failure("x", 1),
                                                                  Failure("y", 2)]))
    assert "The bundle does NOT verify: 2 failures</p>" in two
    zh = render_report(month.bundle, lang="zh-Hant", log_key=month.vkey,
                       verdict=VerifyReport(entries=3, failures=[Failure("x", 1)]))
    assert "匯出包驗證未通過：1 項錯誤" in zh


#: Latin-letter names a Chinese finding may spell, beside _IDENTIFIERS: the log's event types and
#: fields, the bundle's files and formats, and the options to type.
_FINDING_NAMES = _IDENTIFIERS | {"jwks.json", "JSON", "RFC", "JWS", "Merkle", "dst", "exp", "jti",
                                 "ticket_id", "witness", "trust-bundle-key", "json"}
_EVENT_NAME = re.compile(r"\b(?:ticket|alert)\.[a-z_]+")


def _english_words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z][A-Za-z._-]{2,}", _EVENT_NAME.sub(" ", text))) - _FINDING_NAMES


@pytest.mark.parametrize("lang", ["zh-Hant", "zh-Hans"])
def test_every_finding_reads_in_chinese(lang: str) -> None:
    """Each sentence the verifier can say has its Chinese words, with no English in them beyond
    names to look up (issue 14, item 23): the values (ids, hashes, names) fill the braces."""
    words = STRINGS[lang]
    english = {k: v for k, v in STRINGS["en"].items()
               if k.startswith("v.") and not k.endswith(".one")}
    for key, text in english.items():
        said = words[key]
        assert said != text or not re.search("[A-Za-z]{3}", text), key
        assert _english_words(re.sub(r"{[a-z_]+}", " ", said)) == set(), (key, said)
    for state in ("issued", "claimed", "closed", "expired", "failed", "revoked", "verified"):
        assert not re.search("[A-Za-z]", words[f"state.{state}"])


def _tamper(month: Month, path: Path) -> tuple[str, str]:
    """A copy of the month's bundle broken in many ways at once; returns a witness key that did
    not cosign and the jwks.json key id left out."""
    shutil.copytree(month.bundle, path)
    lines = (path / "entries.jsonl").read_bytes().splitlines(keepends=True)
    closed = next(json.loads(b) for b in lines if b'"ticket.closed"' in b)
    agent = next(i for i, b in enumerate(lines) if b'"agent.added"' in b)
    lines[agent] = lines[agent].replace(b'"Mei Lin"', b'"Mei  Lin"')  # an edited entry
    lines.append(lines[next(i for i, b in enumerate(lines) if b'"ticket.issued"' in b)])
    claim = {**closed, "at": closed["at"] + 1, "type": "ticket.claimed"}  # after its end
    lines.append(json.dumps(claim, separators=(",", ":"), sort_keys=True).encode() + b"\n")
    lines.append(lines[-1].replace(b'"iss":"shop.example"', b'"iss":"evil.example"'))
    lines.append(b"{not json}\n")
    (path / "entries.jsonl").write_bytes(b"".join(lines))
    jwks = json.loads((path / "jwks.json").read_text("utf-8"))
    jwks["keys"].append({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"})
    (path / "jwks.json").write_text(json.dumps(jwks), "utf-8")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from callproof.tlog import note

    witness = note.Verifier.from_public_key("witness.example/w1",
                                            Ed25519PrivateKey.generate().public_key(),
                                            note.ALG_COSIGNATURE_V1)
    return witness.to_vkey(), closed["data"]["ticket_id"]


@pytest.mark.parametrize("lang", ["zh-Hant", "zh-Hans"])
def test_a_failing_bundle_is_reported_in_chinese(month: Month, tmp_path: Path,
                                                 lang: str) -> None:
    """The failures of a tampered bundle read in the report's language: the line, the finding
    in words, ids and hashes as code, a ticket's state in words; no English sentence
    (issue 14, item 23). The command line and --json still say them in English, with the same
    codes."""
    witness, ticket = _tamper(month, tmp_path / "bundle")
    out = tmp_path / "r.html"
    args = ["audit", "report", str(tmp_path / "bundle"), "--out", str(out), "--lang", lang,
            "--log-key", month.vkey, "--witness", witness]
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0 and "does NOT verify" in done.output, done.output
    verified = CliRunner().invoke(cli, ["audit", "verify", str(tmp_path / "bundle"), "--json",
                                        "--log-key", month.vkey, "--witness", witness])
    summary = json.loads(verified.output)
    codes = [f["code"] for f in summary["failures"]]
    assert {"tree.root", "tree.extra", "ticket.issued_twice", "story.impossible",
            "line.other_issuer", "line.not_event", "jwks.key_refused",
            "quorum.not_met"} <= set(codes), codes
    assert any("is impossible: the ticket is closed" in f["message"]
               for f in summary["failures"])  # English on the command line
    verdict = _section(out.read_text("utf-8"), "verdict")
    items = re.findall(r"<li>(.*?)</li>", verdict, re.S)
    assert len(items) == len(codes)
    assert [re.findall(r'class="fcode">([a-z_.]+)<', i) for i in items] == [[c] for c in codes]
    closed = "「已結束」" if lang == "zh-Hant" else "“已结束”"
    impossible = next(i for i in items if "story.impossible" in i)
    assert f"<code>{ticket}</code>" in impossible and closed in impossible
    assert re.match(r"第 \d+ 行：", impossible)
    import html as entities

    text = entities.unescape(re.sub(r"<[^>]+>", " ",
                                    re.sub(r"<code[^>]*>.*?</code>", " ", verdict, flags=re.S)))
    assert _english_words(text) == set(), text
    warnings = re.findall(r'<p class="warn">(.*?)</p>', verdict, re.S)
    assert warnings and all("witness.example/w1" in w for w in warnings)


def test_the_report_shows_progress_while_it_scans(month: Month, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    done = CliRunner().invoke(cli, ["audit", "report", str(month.bundle), "--out", str(out),
                                    "--log-key", month.vkey, "--progress"])
    assert done.exit_code == 0, done.output
    lines = (month.bundle / "entries.jsonl").read_bytes().count(b"\n")
    assert re.search(rf"checking .*{lines}/{lines}", done.stderr), done.stderr
    assert re.search(rf"counting .*{lines}/{lines}", done.stderr), done.stderr
    quiet = CliRunner().invoke(cli, ["audit", "report", str(month.bundle), "--out", str(out),
                                     "--log-key", month.vkey, "--no-progress"])
    assert quiet.exit_code == 0 and "checking" not in quiet.stderr


@pytest.mark.parametrize("lang", LANGS)
def test_the_report_fits_a_phone(browser: Any, reports: dict[str, Path], lang: str,
                                 tmp_path: Path) -> None:
    """At 390 px nothing makes the page scroll sideways: wide tables scroll in their own
    focusable region, the charts are drawn for the phone with labels of at least 10 px that
    neither overlap nor run off the chart, and axe finds no violation of any impact."""
    shots = Path(os.environ.get("CALLPROOF_SCREENSHOTS", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(bypass_csp=True, viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto(reports[lang].as_uri())
        page.screenshot(path=str(shots / f"audit-report-{lang}-390.png"), full_page=True)
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
        charts = page.evaluate(_CHART_LABELS)
        assert len(charts) >= 6
        for chart in charts:  # readable: no label below 10 px, cut off or on top of another
            assert chart["smallest"] >= 10 and not chart["cut"] and not chart["overlaps"], chart
        if AXE.is_file():
            page.add_script_tag(path=str(AXE))
            found = page.evaluate(
                """async () => (await axe.run(document, {resultTypes: ['violations']}))
                     .violations.map(v => ({id: v.id, nodes: v.nodes.map(n => n.target)}))""")
            assert found == []
    finally:
        context.close()
