"""The anti-fraud notice card (`callproof notice`) and the QR helpers behind it.

The QR codes are decoded with ``zbarimg`` (Debian's zbar-tools). The SVG card is rasterised with
``rsvg-convert`` (Debian's librsvg2-bin) first, so the decode checks the SVG as a viewer draws it,
not the matrix it came from. The PNG needs Noto Sans CJK (Debian's fonts-noto-cjk). Without these
tools the tests that need them are skipped with the reason — unless CALLPROOF_REQUIRE_BROWSER=1
(as .ci/run sets), where they fail instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from callproof import notice as notice_mod
from callproof._cli import cli
from callproof.config import DEMO_CONFIG, Company
from callproof.errors import NoticeError
from callproof.notice import (
    LANGUAGES,
    TEXTS,
    Card,
    Text,
    card_for,
    estimate,
    hotline_text,
    layout,
    render_html,
    render_notice,
    render_svg,
    wrap,
)
from callproof.qr import qr_matrix, qr_png, qr_svg, qr_terminal

REQUIRED = os.environ.get("CALLPROOF_REQUIRE_BROWSER") == "1"
COMPANY = Company(name="Example Shop", official_number="+886 2 1234 5678",
                  check_page="shop.example/call", country="TW", hotline="165")
URL = "https://shop.example/call"
FORMATS = ("png", "svg", "html")
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "svg": b"<?xml", "html": b"<!DOCTYPE html>"}


def _need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path:
        return path
    reason = f"{tool} is not installed (Debian package {package})"
    if REQUIRED:
        pytest.fail(f"{reason}; CALLPROOF_REQUIRE_BROWSER=1 requires it")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def zbarimg() -> str:
    return _need("zbarimg", "zbar-tools")


@pytest.fixture(scope="session")
def rsvg_convert() -> str:
    return _need("rsvg-convert", "librsvg2-bin")


@pytest.fixture(scope="session")
def cjk_font() -> None:
    try:
        notice_mod.font_file(False)
    except NoticeError as e:
        if REQUIRED:
            pytest.fail(f"{e}; CALLPROOF_REQUIRE_BROWSER=1 requires it")
        pytest.skip(str(e))


def decode(zbarimg: str, png: Path) -> list[str]:
    """Every QR code zbarimg finds in the image, as text."""
    result = subprocess.run([zbarimg, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable",
                             str(png)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"zbarimg found no QR code in {png}: {result.stderr}"
    return result.stdout.splitlines()


def rasterise(rsvg_convert: str, svg: Path) -> Path:
    png = svg.with_suffix(".svg.png")
    subprocess.run([rsvg_convert, "--background-color=white", "-o", str(png), str(svg)],
                   check=True, timeout=60)
    return png


@pytest.fixture
def run(tmp_path: Path) -> Callable[..., Result]:
    """`callproof` against a data dir holding only config.toml (the notice needs nothing else)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.toml").write_text(DEMO_CONFIG.format(
        issuer_id="shop.example", name=COMPANY.name, official_number=COMPANY.official_number,
        check_page=COMPANY.check_page, country=COMPANY.country, hotline=COMPANY.hotline), "utf-8")

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--data-dir", str(data), *args], catch_exceptions=False)

    return invoke


def one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("callproof: "), result.output
    for needle in needles:
        assert needle in lines[0]


def squeeze(text: str) -> str:
    """Text with the spaces and line breaks of wrapping taken out, to look for phrases."""
    return re.sub(r"\s+", "", text)


def svg_text(svg: str) -> str:
    return "".join(re.findall(r"<text[^>]*>([^<]*)</text>", svg))


# --- every format in every language --------------------------------------------------------

@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_the_cli_writes_each_format_in_each_language(run: Callable[..., Result], tmp_path: Path,
                                                      lang: str, fmt: str) -> None:
    if fmt == "png":
        try:
            notice_mod.font_file(False)
        except NoticeError as e:
            if REQUIRED:
                raise
            pytest.skip(str(e))
    out = tmp_path / f"notice-{lang}.{fmt}"
    result = run("notice", "--lang", lang, "--format", fmt, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(MAGIC[fmt])
    assert out.stat().st_size > 2000


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_png_qr_code_decodes_to_the_check_page(zbarimg: str, cjk_font: None, tmp_path: Path,
                                                   lang: str) -> None:
    png = tmp_path / f"{lang}.png"
    png.write_bytes(render_notice(COMPANY, lang, "png"))
    assert decode(zbarimg, png) == [URL]

    from PIL import Image

    with Image.open(png) as image:
        assert image.width == 1200 and image.height > 1200  # print-friendly, one column
        assert image.info.get("dpi", (0, 0))[0] == pytest.approx(300, abs=1)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_svg_qr_code_decodes_to_the_check_page(zbarimg: str, rsvg_convert: str,
                                                   tmp_path: Path, lang: str) -> None:
    svg = tmp_path / f"{lang}.svg"
    svg.write_bytes(render_notice(COMPANY, lang, "svg"))
    assert decode(zbarimg, rasterise(rsvg_convert, svg)) == [URL]


def test_the_qr_written_by_the_cli_decodes(run: Callable[..., Result], zbarimg: str,
                                           cjk_font: None, tmp_path: Path) -> None:
    out = tmp_path / "card.png"  # the format comes from the suffix
    assert run("notice", "--lang", "zh-Hant", "--out", str(out)).exit_code == 0
    assert decode(zbarimg, out) == [URL]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_card_holds_the_address_the_official_number_and_the_hotline(lang: str) -> None:
    card = card_for(COMPANY, lang)
    hotline = hotline_text(lang, "TW", "165")
    svg = render_svg(card)
    html = render_html(card)
    drawn = squeeze(" ".join(item.text for item in layout(card, estimate).items
                             if isinstance(item, Text)))  # what the PNG draws
    for text in (squeeze(svg_text(svg)), squeeze(html), drawn):
        assert squeeze(COMPANY.official_number) in text
        assert squeeze(hotline) in text
        assert "shop.example/call" in text
    assert "165" in hotline


def test_the_svg_is_self_contained_vector_and_labelled() -> None:
    svg = render_notice(COMPANY, "zh-Hant", "svg").decode("utf-8")
    assert 'xml:lang="zh-Hant"' in svg and "<title" in svg
    assert "<image" not in svg and "href" not in svg and "url(" not in svg
    assert svg.count("<rect") > 50  # the QR code's modules are vector rects
    assert '"Noto Sans CJK TC"' in svg.replace("&quot;", '"')
    assert '"Noto Sans CJK SC"' in render_notice(COMPANY, "zh-Hans", "svg").decode().replace(
        "&quot;", '"')
    assert re.findall(r"https?://[^\s\"'<]+", svg) == ["http://www.w3.org/2000/svg"] * 2


# --- HTML: self-contained, the right language ---------------------------------------------

class _Links(HTMLParser):
    """Collects every attribute that could load or link to something, and the <html lang>."""

    URL_ATTRIBUTES = {"src", "href", "srcset", "action", "formaction", "poster", "data",
                      "xlink:href", "background", "cite", "longdesc", "ping"}

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.tags: set[str] = set()
        self.lang: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if tag == "html" and name == "lang":
                self.lang = value
            if name in self.URL_ATTRIBUTES:
                self.urls.append((tag, name, value or ""))
            if name == "style" and value and "url(" in value:
                self.urls.append((tag, name, value))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_html_is_self_contained_and_links_only_to_the_check_page(lang: str) -> None:
    html = render_notice(COMPANY, lang, "html").decode("utf-8")
    parser = _Links()
    parser.feed(html)
    assert parser.lang == lang
    assert parser.urls == [("a", "href", URL)]
    assert not parser.tags & {"script", "link", "img", "iframe", "object", "embed", "style"}
    assert "@import" not in html and "url(" not in html
    assert re.findall(r"https?://[^\s\"'<]+", html) == [URL]  # the inline SVG needs no xmlns
    assert "<svg" in html and 'role="img"' in html  # the QR code inline, with a name
    assert '<meta charset="utf-8">' in html


def test_the_html_escapes_the_company_profile() -> None:
    company = Company(name='A & B <Shop> "Ltd"', official_number="0800 <1>",
                      check_page="shop.example/call?a=1&b=2", country="TW", hotline="165")
    html = render_notice(company, "en", "html").decode("utf-8")
    assert "<Shop>" not in html and "A &amp; B &lt;Shop&gt;" in html
    assert 'href="https://shop.example/call?a=1&amp;b=2"' in html
    svg = render_notice(company, "en", "svg").decode("utf-8")
    assert "<Shop>" not in svg and "&lt;Shop&gt;" in svg


# --- words: the GLOSSARY's terms, the check page's hotline names ------------------------------

def test_each_chinese_text_uses_its_own_regions_words() -> None:
    def words(lang: str) -> str:
        return " ".join((TEXTS[lang].title, *TEXTS[lang].rules, TEXTS[lang].qr_caption))

    hant, hans = words("zh-Hant"), words("zh-Hans")
    for term in ("來電確認碼", "來電查證頁", "帳戶", "螢幕", "連結", "信用卡", "網址", "轉接"):
        assert term in hant
    for term in ("来电确认码", "来电查证页", "账户", "屏幕", "链接", "银行卡", "网址", "二维码"):
        assert term in hans
    for mainland_word in ("帐户", "账户", "萤幕", "屏幕", "链接", "二维码"):
        assert mainland_word not in hant
    for taiwan_word in ("帳戶", "螢幕", "連結", "信用卡", "QR"):
        assert taiwan_word not in hans
    # The call code is never called a 驗證碼: that word only names what we never ask for.
    assert hant.count("驗證碼") == 1 and hans.count("验证码") == 1


def test_the_english_rules_say_what_we_never_ask_for() -> None:
    rules = " ".join(TEXTS["en"].rules)
    for phrase in ("codes, card or bank details, screen sharing, transfers, loans, installing "
                   "apps, opening links", "We never transfer you to a bank, the police or a "
                   "government office.", "Caller ID can be faked.", "call code"):
        assert phrase in rules
    assert "ticket" not in rules.lower() and "token" not in rules.lower()


@pytest.mark.parametrize(("country", "number", "expected"), [
    ("TW", "165", {"en": "the 165 anti-fraud hotline", "zh-Hant": "165 反詐騙諮詢專線"}),
    ("CN", "96110", {"en": "the 96110 anti-fraud warning hotline",
                     "zh-Hans": "96110 反诈预警劝阻专线"}),
    ("HK", "18222", {"en": "the Anti-Scam Helpline 18222", "zh-Hant": "防騙易熱線 18222"}),
    ("SG", "1799", {"en": "the national anti-fraud hotline 1799"}),
])
def test_the_hotline_is_the_company_countrys(country: str, number: str,
                                             expected: dict[str, str]) -> None:
    company = Company(name="Shop", official_number="1", check_page="s.example/c",
                      country=country, hotline=number)
    for lang, text in expected.items():
        assert hotline_text(lang, country, number) == text
        assert text in render_html(card_for(company, lang))


# --- errors: one clear line, exit 1 ---------------------------------------------------------

def test_a_bad_language_is_one_line(run: Callable[..., Result]) -> None:
    one_line_error(run("notice", "--lang", "fr", "--format", "svg"), "'fr'", "zh-Hant")


def test_a_bad_or_missing_format_is_one_line(run: Callable[..., Result]) -> None:
    one_line_error(run("notice", "--format", "pdf"), "'pdf'", "png, svg or html")
    one_line_error(run("notice"), "--format")


def test_an_unwritable_out_is_one_line_and_leaves_nothing(run: Callable[..., Result],
                                                          tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    one_line_error(run("notice", "--format", "svg", "--out", str(blocker / "card.svg")),
                   "cannot write", "card.svg")
    one_line_error(run("notice", "--format", "svg", "--out", str(tmp_path)), "cannot write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "data"]


def test_a_missing_font_names_the_debian_package(run: Callable[..., Result], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notice_mod, "FONT_PATHS", {False: tmp_path / "none.ttc",
                                                   True: tmp_path / "none-bold.ttc"})
    monkeypatch.setattr(notice_mod, "_fc_match", lambda pattern: None)
    notice_mod._font.cache_clear()
    try:
        one_line_error(run("notice", "--format", "png", "--out", str(tmp_path / "c.png")),
                       "fonts-noto-cjk")
    finally:
        notice_mod._font.cache_clear()
    assert not (tmp_path / "c.png").exists()
    # SVG and HTML need no font file: they name the fonts and let the reader's system draw them.
    assert run("notice", "--format", "svg", "--out", str(tmp_path / "c.svg")).exit_code == 0


def test_without_a_data_dir_it_says_to_run_init(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "none"), "notice",
                                      "--format", "html"])
    one_line_error(result, "callproof init")


def test_svg_and_html_go_to_standard_output(run: Callable[..., Result]) -> None:
    result = run("notice", "--lang", "zh-Hans", "--format", "html")
    assert result.exit_code == 0
    assert result.stdout.startswith("<!DOCTYPE html>") and '<html lang="zh-Hans">' in result.stdout
    assert "尾号" not in result.stdout  # nothing about a phone on a card (that is the page's)


def test_the_language_tag_is_accepted_in_any_case(run: Callable[..., Result]) -> None:
    result = run("notice", "--lang", "ZH_hant", "--format", "svg")
    assert result.exit_code == 0 and 'xml:lang="zh-Hant"' in result.stdout


# --- line breaking --------------------------------------------------------------------------

def _chars(s: str) -> float:
    return float(len(s))


def test_wrap_keeps_phone_numbers_and_words_whole() -> None:
    lines = wrap("Then call us on +886 2 1234 5678, or call the 165 anti-fraud hotline.", 20,
                 _chars)
    assert any("+886 2 1234 5678," in line for line in lines)
    assert all(len(line) <= 20 or line.endswith(",") for line in lines)


def test_wrap_never_starts_a_chinese_line_with_closing_punctuation() -> None:
    for width in range(6, 30):
        for rule in (*TEXTS["zh-Hant"].rules, *TEXTS["zh-Hans"].rules):
            lines = wrap(rule, width, _chars)
            assert "".join(lines).replace(" ", "") == rule.replace(" ", "")
            assert not any(line[0] in "，。、：；" for line in lines[1:]), lines


def test_wrap_breaks_an_address_too_long_for_a_line() -> None:
    assert wrap("verylongaddress.example/call", 10, _chars) == ["verylongad", "dress.exam",
                                                                "ple/call"]


def test_a_long_address_still_fits_and_decodes(zbarimg: str, cjk_font: None,
                                               tmp_path: Path) -> None:
    company = Company(name="一個名字很長的購物網站股份有限公司", official_number="0800 000 123",
                      check_page="customer-service.a-rather-long-shop-name.example/call-check",
                      country="TW", hotline="165")
    png = tmp_path / "long.png"
    png.write_bytes(render_notice(company, "zh-Hant", "png"))
    assert decode(zbarimg, png) == ["https://" + company.check_page]


def test_a_configured_https_scheme_is_kept_once() -> None:
    company = Company(name="S", official_number="1", check_page="https://shop.example/call")
    card: Card = card_for(company, "en")
    assert card.url == URL and card.address == "shop.example/call"


# --- the QR helpers -------------------------------------------------------------------------

def test_qr_png_decodes(zbarimg: str, tmp_path: Path) -> None:
    png = tmp_path / "qr.png"
    png.write_bytes(qr_png("otpauth://totp/Shop%20calls:incoming?secret=JBSWY3DPEHPK3PXP"))
    assert decode(zbarimg, png) == ["otpauth://totp/Shop%20calls:incoming?secret=JBSWY3DPEHPK3PXP"]


def test_qr_svg_is_standalone_and_decodes(zbarimg: str, rsvg_convert: str,
                                          tmp_path: Path) -> None:
    svg = qr_svg(URL, size="300", label="QR")
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"') and "<path" not in svg
    path = tmp_path / "qr.svg"
    path.write_text(svg, "utf-8")
    assert decode(zbarimg, rasterise(rsvg_convert, path)) == [URL]
    assert 'aria-hidden="true"' in qr_svg(URL) and "xmlns" not in qr_svg(URL, xmlns=False)


@pytest.mark.parametrize("invert", [False, True])
def test_qr_terminal_draws_the_matrix(invert: bool) -> None:
    text = qr_terminal(URL, invert=invert)
    matrix = qr_matrix(URL)
    rows: list[list[bool]] = []
    halves = {"█": (True, True), "▀": (True, False), "▄": (False, True), " ": (False, False)}
    for line in text.splitlines():
        pairs = [halves[ch] for ch in line]
        rows.append([top for top, _ in pairs])
        rows.append([bottom for _, bottom in pairs])
    drawn_dark = [[cell == invert for cell in row] for row in rows[:len(matrix)]]
    assert drawn_dark == matrix
    assert text.endswith("\n") and len(text.splitlines()) == (len(matrix) + 1) // 2
