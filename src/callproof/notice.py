"""The anti-fraud notice card: for receipts, order pages, packing slips and e-mails.

It tells customers, before any scammer calls, where the genuine call check page is (as text and as
a QR code), the official number, the national anti-fraud hotline, and how our calls work. The
words follow shared/GLOSSARY.md and match the check page's catalogues
(``verifier_app/translations``).

Three forms, one content:

* **SVG**: hand-written, the QR as vector ``<rect>``s, no external references; the text names
  Noto Sans CJK first and common system fonts after it.
* **HTML**: one self-contained document (inline CSS in ``style`` attributes, the QR as inline SVG,
  no external assets), for an e-mail or an order page.
* **PNG**: 1200 px wide, drawn with Pillow in Noto Sans CJK (Debian's ``fonts-noto-cjk``), for
  printing.

    >>> card = render_notice(company, "zh-Hant", "svg")       # bytes, ready to write
"""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from callproof.config import Company
from callproof.errors import NoticeError
from callproof.protocol.languages import LANGUAGES
from callproof.qr import qr_image, qr_matrix, qr_svg

if TYPE_CHECKING:
    from PIL import ImageFont

FORMATS = ("png", "svg", "html")
Format = Literal["png", "svg", "html"]

#: The QR code's error correction: Q (25 %) survives smudged receipts and creased slips.
QR_ERROR_CORRECTION: Literal["Q"] = "Q"


# The national anti-fraud hotline by country, worded as on the check page (verifier_app/i18n.py
# and its catalogues; a test keeps them in step). The number itself is the company profile's.
HOTLINE_NAMES: dict[str, dict[str, str]] = {
    "en": {
        "TW": "the {number} anti-fraud hotline",
        "CN": "the {number} anti-fraud warning hotline",
        "HK": "the Anti-Scam Helpline {number}",
        "": "the national anti-fraud hotline {number}",
    },
    "zh-Hant": {
        "TW": "{number} 反詐騙諮詢專線",
        "CN": "{number} 反詐預警勸阻專線",
        "HK": "防騙易熱線 {number}",
        "": "全國反詐騙專線 {number}",
    },
    "zh-Hans": {
        "TW": "{number} 反诈骗咨询专线",
        "CN": "{number} 反诈预警劝阻专线",
        "HK": "防骗易热线 {number}",
        "": "全国反诈专线 {number}",
    },
}


@dataclass(frozen=True)
class NoticeText:
    """Every sentence on the card in one language; ``{company}`` etc. are filled in."""

    title: str
    lead: str
    qr_caption: str
    qr_label: str
    official: str
    rules_heading: str
    rules: tuple[str, ...]
    doubt: str
    then_call: tuple[str, str]  # two lines: the official number, then the hotline


# zh-Hant is written for Taiwan and zh-Hans for the mainland, each in its own words (GLOSSARY):
# 身分/身份, 帳戶/账户, 螢幕/屏幕, 連結/链接, 傳/发, QR 碼/二维码, 信用卡/银行卡.
TEXTS: dict[str, NoticeText] = {
    "en": NoticeText(
        title="Is {company} calling you?",
        lead="Check every call from us on our call check page:",
        qr_caption="Type this address yourself, or scan the QR\u00a0code.",
        qr_label="QR code for our call check page, {page}",
        official="Our official number",
        rules_heading="When we call you",
        rules=(
            "We prove who we are first: we read you a 9-digit call code.",
            "Type the call code only on our call check page, at the address above. "
            "Never on a link someone sends you.",
            "You never have to tell the caller anything.",
            "We never ask for: codes, card or bank details, screen sharing, transfers, loans, "
            "installing apps, opening links.",
            "We never transfer you to a bank, the police or a government office.",
            "Caller ID can be faked.",
        ),
        doubt="Not sure? Hang up.",
        then_call=("Then call us on {number},", "or call {hotline}."),
    ),
    "zh-Hant": NoticeText(
        title="是 {company} 打給您嗎？",
        lead="我們的每一通來電，都可以在來電查證頁查證：",
        qr_caption="請自己輸入這個網址，或掃描 QR\u00a0碼。",
        qr_label="來電查證頁 {page} 的 QR 碼",
        official="官方客服電話",
        rules_heading="我們打電話給您時",
        rules=(
            "我們會先證明身分：客服人員會唸給您一組 9 位數的來電確認碼。",
            "來電確認碼只在上面這個網址的來電查證頁輸入。絕不要在別人傳給您的連結裡輸入。",
            "您不需要告訴來電者任何事。",
            "我們絕不會要求：驗證碼、信用卡或銀行帳戶資料、分享螢幕、轉帳、貸款、"
            "安裝 App、點連結。",
            "我們不會把電話轉接給銀行、警察或政府機關。",
            "來電顯示可以造假。",
        ),
        doubt="有疑慮？請立即掛斷電話。",
        then_call=("再撥打官方客服電話 {number}，", "或撥打 {hotline}。"),
    ),
    "zh-Hans": NoticeText(
        title="是 {company} 打给您吗？",
        lead="我们的每一通来电，都可以在来电查证页查证：",
        qr_caption="请自己输入这个网址，或扫描二维码。",
        qr_label="来电查证页 {page} 的二维码",
        official="官方客服电话",
        rules_heading="我们打电话给您时",
        rules=(
            "我们会先证明身份：客服人员会念给您一组 9 位数的来电确认码。",
            "来电确认码只在上面这个网址的来电查证页输入。绝不要在别人发给您的链接里输入。",
            "您不需要告诉来电者任何事。",
            "我们绝不会要求：验证码、银行卡或账户信息、共享屏幕、转账、贷款、"
            "安装 App、点链接。",
            "我们不会把电话转接给银行、警察或政府机关。",
            "来电显示可以造假。",
        ),
        doubt="有疑虑？请立即挂断电话。",
        then_call=("再拨打官方客服电话 {number}，", "或拨打 {hotline}。"),
    ),
}

#: Font stacks for SVG and HTML: Noto Sans CJK (what the PNG uses) first, then common system fonts.
FONT_FAMILIES = {
    "en": '"Noto Sans", "Noto Sans CJK TC", "Helvetica Neue", Arial, sans-serif',
    "zh-Hant": '"Noto Sans CJK TC", "Noto Sans TC", "PingFang TC", "Microsoft JhengHei", '
               "sans-serif",
    "zh-Hans": '"Noto Sans CJK SC", "Noto Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif',
}
_FONT_FAMILY_NAME = {"en": "Noto Sans CJK TC", "zh-Hant": "Noto Sans CJK TC",
                     "zh-Hans": "Noto Sans CJK SC"}
#: Where Debian's fonts-noto-cjk puts the fonts; fc-match is asked when they are not there.
FONT_PATHS = {
    False: Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    True: Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"),
}
FONT_PACKAGE_HINT = "install Debian's fonts-noto-cjk (apt-get install fonts-noto-cjk)"


def check_url(company: Company) -> str:
    """The URL the QR code holds: ``https://<check_page>`` (a configured scheme is kept)."""
    page = company.check_page.strip()
    return page if re.match(r"https?://", page, re.IGNORECASE) else f"https://{page}"


def check_address(company: Company) -> str:
    """The address as customers type it: the check page without ``https://``."""
    return re.sub(r"^https://", "", company.check_page.strip(), flags=re.IGNORECASE)


def hotline_text(lang: str, country: str, number: str) -> str:
    names = HOTLINE_NAMES[lang]
    return names.get(country.upper(), names[""]).format(number=number)


def normalise_language(lang: str) -> str:
    """``en``, ``zh-Hant`` or ``zh-Hans`` from any case or ``_``; :class:`NoticeError` else."""
    wanted = lang.strip().replace("_", "-").lower()
    for tag in LANGUAGES:
        if tag.lower() == wanted:
            return tag
    raise NoticeError(f"unknown language {lang!r}: use en, zh-Hant or zh-Hans")


@dataclass(frozen=True)
class Card:
    """The card's sentences with the company's details filled in."""

    lang: str
    url: str
    address: str
    number: str
    title: str
    lead: str
    qr_caption: str
    qr_label: str
    official: str
    rules_heading: str
    rules: tuple[str, ...]
    doubt: str
    then_call: tuple[str, ...]


#: The voice line beside the web address (config ``[voice] number``; spec/voice-line.md): a rule
#: of its own, after the one that names the check page.
VOICE_RULE = {
    "en": "No internet? Call our voice line, {voice}, from your own phone and key in the call "
          "code.",
    "zh-Hant": "沒有網路？請用您自己的電話撥打我們的語音查證專線 {voice}，按鍵輸入來電確認碼。",
    "zh-Hans": "没有网络？请用您自己的电话拨打我们的语音查证专线 {voice}，按键输入来电确认码。",
}


def card_for(company: Company, lang: str, *, voice_number: str = "") -> Card:
    lang = normalise_language(lang)
    t = TEXTS[lang]
    if voice_number.strip():
        rules = (*t.rules[:2], VOICE_RULE[lang].format(voice=voice_number.strip()), *t.rules[2:])
        t = dataclasses.replace(t, rules=rules)
    address = check_address(company)
    hotline = hotline_text(lang, company.country, company.hotline)
    return Card(
        lang=lang, url=check_url(company), address=address, number=company.official_number,
        title=t.title.format(company=company.name_in(lang)), lead=t.lead,
        qr_caption=t.qr_caption, qr_label=t.qr_label.format(page=address),
        official=t.official, rules_heading=t.rules_heading, rules=t.rules, doubt=t.doubt,
        then_call=tuple(line.format(number=company.official_number, hotline=hotline)
                        for line in t.then_call),
    )


def render_notice(company: Company, lang: str, fmt: str, *, voice_number: str = "") -> bytes:
    """The card in ``fmt`` (png, svg or html) and ``lang``, as the bytes of a file (naming the
    voice line when ``voice_number`` is given)."""
    card = card_for(company, lang, voice_number=voice_number)
    if fmt == "png":
        return render_png(card)
    if fmt == "svg":
        return render_svg(card).encode("utf-8")
    if fmt == "html":
        return render_html(card).encode("utf-8")
    raise NoticeError(f"unknown format {fmt!r}: use png, svg or html")


# --- layout, shared by PNG and SVG ----------------------------------------------------------

WIDTH = 1200
PAD = 72  # text starts this far in from the edge
QR_BOX = 380  # the QR code's square, quiet zone included
INK = "#000000"
PAPER = "#ffffff"
CALLOUT = "#fff1b8"  # a pale yellow behind "hang up": calm, and black on it stays high contrast

Measure = Callable[[str, int, bool], float]


@dataclass(frozen=True)
class Text:
    x: float
    y: float  # the baseline
    text: str
    size: int
    bold: bool = False


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float
    fill: str
    stroke: str
    stroke_width: int
    radius: int


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    width: int


@dataclass(frozen=True)
class QRBox:
    x: float
    y: float
    size: int


Item = Text | Box | Line | QRBox


@dataclass(frozen=True)
class Layout:
    width: int
    height: int
    items: tuple[Item, ...]


_CLOSING = set("，。、；：？！）」』】》,.;:?!)”’%")
_OPENING = set("（「『【《(“‘")
# A phone number, a word (NBSP keeps "QR\u00a0code" together), a run of spaces, or one character.
_TOKEN = re.compile(r"\+?\d[\d \-]*\d|[A-Za-z0-9\u00c0-\u024f@#&+\-'’.,:;!?/%()=~_\u00a0]+"
                    r"|[ \t\n]+|.", re.DOTALL)


def wrap(text: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """Greedy line breaking for English (at spaces) and Chinese (between characters).

    Closing punctuation never starts a line (it may hang past the edge), opening punctuation
    never ends one, and a word too long for a line (an address) breaks between characters.
    """
    lines: list[str] = []
    line = ""
    pending: list[str] = []
    tokens: list[str] = []
    for tok in _TOKEN.findall(text):
        if tokens and tokens[-1].endswith("\u00a0"):
            tokens[-1] += tok  # a no-break space binds "QR\u00a0碼" as one
        else:
            tokens.append(tok)
    for tok in tokens:
        if tok.strip(" \t\n") == "":
            pending.append(" ")
            continue
        pieces = [tok] if measure(tok) <= width else list(tok)
        for piece in pieces:
            space = " " if pending and line else ""
            pending.clear()
            candidate = line + space + piece
            fits = measure(candidate) <= width
            if not line or fits or piece in _CLOSING or line[-1] in _OPENING:
                line = candidate
            else:
                lines.append(line)
                line = piece
    if line:
        lines.append(line)
    return lines


def layout(card: Card, measure: Measure) -> Layout:
    items: list[Item] = []
    inner = WIDTH - 2 * PAD
    y = 56.0

    def paragraph(text: str, x: float, width: float, size: int, bold: bool = False,
                  leading: float = 1.4) -> float:
        """Adds the text's lines below ``y``; returns the first line's baseline."""
        nonlocal y
        baselines = []
        for row in wrap(text, width, lambda s: measure(s, size, bold)):
            y += size * leading
            baselines.append(y - size * (leading - 1) / 2 - size * 0.12)
            items.append(Text(x, baselines[-1], row, size, bold))
        return baselines[0] if baselines else y

    paragraph(card.title, PAD, inner, 64, bold=True, leading=1.3)
    y += 8
    paragraph(card.lead, PAD, inner, 40)
    y += 24

    # The QR code on the left; the address, how to open it and the official number beside it.
    top = y
    items.append(QRBox(PAD - 12, top, QR_BOX))  # its white quiet zone lines up with the text
    col = PAD - 12 + QR_BOX + 28
    col_width = WIDTH - PAD - col
    size = 64
    while size > 36 and measure(card.address, size, True) > col_width:
        size -= 2
    y = top + 8
    paragraph(card.address, col, col_width, size, bold=True, leading=1.3)
    y += 6
    paragraph(card.qr_caption, col, col_width, 36)
    y += 34
    paragraph(card.official, col, col_width, 36)
    paragraph(card.number, col, col_width, 52, bold=True, leading=1.3)
    y = max(y, top + QR_BOX) + 28

    items.append(Line(PAD, y, WIDTH - PAD, y, 3))
    y += 16
    paragraph(card.rules_heading, PAD, inner, 46, bold=True, leading=1.5)
    y += 4
    bullet_indent = 48
    for rule in card.rules:
        baseline = paragraph(rule, PAD + bullet_indent, inner - bullet_indent, 40, leading=1.42)
        items.append(Text(PAD + 6, baseline, "•", 40, True))
        y += 14
    y += 26

    # The safe action, in a calm callout at the end.
    box_top = y
    y += 26
    paragraph(card.doubt, PAD + 36, inner - 72, 46, bold=True, leading=1.4)
    y += 4
    for line in card.then_call:
        paragraph(line, PAD + 36, inner - 72, 40, leading=1.45)
    y += 30
    items.insert(0, Box(PAD - 16, box_top, inner + 32, y - box_top, CALLOUT, INK, 3, 18))
    y += 56
    height = int(y)
    items.insert(0, Box(14, 14, WIDTH - 28, height - 28, PAPER, INK, 6, 28))
    return Layout(WIDTH, height, tuple(items))


# --- SVG ------------------------------------------------------------------------------------

def _em(ch: str) -> float:
    """A generous estimate of a character's advance in em (SVG has no font to measure with)."""
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return 1.0
    if ch == " ":
        return 0.28
    if ch in "iljI.,:;!|'’()[]":
        return 0.3
    if ch in "mwMW@%":
        return 0.92
    if ch.isupper() or ch.isdigit() or ch in "+#&":
        return 0.66
    return 0.57


def estimate(text: str, size: int, bold: bool) -> float:
    return sum(_em(c) for c in text) * size * (1.06 if bold else 1.0)


def render_svg(card: Card) -> str:
    """The card as a standalone SVG document (UTF-8 text)."""
    lay = layout(card, estimate)
    family = escape(FONT_FAMILIES[card.lang], quote=True)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{lay.width}" height="{lay.height}" '
        f'viewBox="0 0 {lay.width} {lay.height}" xml:lang="{card.lang}" lang="{card.lang}" '
        f'role="img" aria-labelledby="notice-title">\n',
        f'<title id="notice-title">{escape(card.title)}</title>\n',
        f'<g font-family="{family}" fill="{INK}">\n',
    ]
    for item in lay.items:
        if isinstance(item, Box):
            out.append(f'<rect x="{item.x:g}" y="{item.y:g}" width="{item.w:g}" '
                       f'height="{item.h:g}" rx="{item.radius}" fill="{item.fill}" '
                       f'stroke="{item.stroke}" stroke-width="{item.stroke_width}"/>\n')
        elif isinstance(item, Line):
            out.append(f'<line x1="{item.x1:g}" y1="{item.y1:g}" x2="{item.x2:g}" '
                       f'y2="{item.y2:g}" stroke="{INK}" stroke-width="{item.width}"/>\n')
        elif isinstance(item, QRBox):
            qr = qr_svg(card.url, size=str(item.size), error_correction=QR_ERROR_CORRECTION,
                        label=card.qr_label)
            out.append(f'<g transform="translate({item.x:g} {item.y:g})">{qr}</g>\n')
        else:
            weight = ' font-weight="700"' if item.bold else ""
            out.append(f'<text x="{item.x:g}" y="{item.y:.1f}" font-size="{item.size}"'
                       f'{weight}>{escape(item.text)}</text>\n')
    out.append("</g>\n</svg>\n")
    return "".join(out)


# --- PNG ------------------------------------------------------------------------------------

def _fc_match(pattern: str) -> Path | None:
    fc = shutil.which("fc-match")
    if not fc:
        return None
    try:
        found = subprocess.run([fc, "-f", "%{file}", pattern], capture_output=True,  # noqa: S603
                               text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    # fc-match always answers with *some* font; only Noto Sans CJK has every character we need.
    return Path(found) if found and "NotoSansCJK" in Path(found).name else None


def font_file(bold: bool) -> Path:
    """Noto Sans CJK (regular or bold): Debian's path, else wherever fc-match finds it."""
    known = FONT_PATHS[bold]
    if known.is_file():
        return known
    style = "Bold" if bold else "Regular"
    found = _fc_match(f"Noto Sans CJK TC:style={style}")
    if found and found.is_file():
        return found
    if bold:
        return font_file(False)  # a regular face still reads; bold is a nicety
    raise NoticeError(f"the PNG notice needs the Noto Sans CJK font, which is not installed: "
                      f"{FONT_PACKAGE_HINT}")


@cache
def _font(lang: str, size: int, bold: bool) -> ImageFont.FreeTypeFont:
    from PIL import ImageFont

    path = font_file(bold)
    wanted = _FONT_FAMILY_NAME[lang]
    for index in range(16):  # a .ttc holds JP, KR, SC, TC, HK (and mono) faces
        try:
            font = ImageFont.truetype(str(path), size, index=index)
        except OSError:
            break
        if font.getname()[0] == wanted:
            return font
    try:
        return ImageFont.truetype(str(path), size)
    except OSError as e:
        raise NoticeError(f"cannot read the font {path}: {e}; {FONT_PACKAGE_HINT}") from e


def render_png(card: Card) -> bytes:
    """The card as a PNG, 1200 px wide (10 cm at 300 dpi), black on white."""
    from PIL import Image, ImageDraw

    def measure(text: str, size: int, bold: bool) -> float:
        return float(_font(card.lang, size, bold).getlength(text))

    lay = layout(card, measure)
    image = Image.new("RGB", (lay.width, lay.height), PAPER)
    draw = ImageDraw.Draw(image)
    for item in lay.items:
        if isinstance(item, Box):
            draw.rounded_rectangle((item.x, item.y, item.x + item.w, item.y + item.h),
                                   radius=item.radius, fill=item.fill, outline=item.stroke,
                                   width=item.stroke_width)
        elif isinstance(item, Line):
            draw.line((item.x1, item.y1, item.x2, item.y2), fill=INK, width=item.width)
        elif isinstance(item, QRBox):
            modules = len(qr_matrix(card.url, error_correction=QR_ERROR_CORRECTION))
            scale = item.size // modules  # whole pixels per module keep the edges sharp
            qr = qr_image(card.url, scale=scale, error_correction=QR_ERROR_CORRECTION)
            offset = (item.size - qr.width) // 2
            image.paste(qr.convert("RGB"), (int(item.x) + offset, int(item.y) + offset))
        else:
            draw.text((item.x, item.y), item.text, font=_font(card.lang, item.size, item.bold),
                      fill=INK, anchor="ls")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True, dpi=(300, 300))
    return out.getvalue()


# --- HTML -----------------------------------------------------------------------------------

def render_html(card: Card) -> str:
    """The card as one self-contained HTML document: inline styles, inline SVG, no assets.

    The only URL in it is the link to the check page itself.
    """
    e = escape
    family = e(FONT_FAMILIES[card.lang], quote=True)
    qr = qr_svg(card.url, size="100%", error_correction=QR_ERROR_CORRECTION, label=card.qr_label,
                xmlns=False)
    rules = "\n".join(f'<li style="margin:0 0 0.5em">{e(rule)}</li>' for rule in card.rules)
    return f"""<!DOCTYPE html>
<html lang="{card.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(card.title)}</title>
</head>
<body style="margin:0;padding:16px;background:{PAPER};color:{INK};font-family:{family};">
<article style="max-width:34em;margin:0 auto;padding:24px;border:4px solid {INK};\
border-radius:16px;background:{PAPER};color:{INK};font-size:20px;line-height:1.5;">
<h1 style="font-size:1.6em;line-height:1.3;margin:0 0 0.4em;">{e(card.title)}</h1>
<p style="margin:0 0 0.5em;">{e(card.lead)}</p>
<p style="margin:0 0 0.5em;font-size:1.5em;font-weight:700;word-break:break-all;">\
<a href="{e(card.url, quote=True)}" style="color:{INK};">{e(card.address)}</a></p>
<div style="width:240px;max-width:70%;margin:0 0 0.5em;">{qr}</div>
<p style="margin:0 0 1em;">{e(card.qr_caption)}</p>
<p style="margin:0 0 1em;">{e(card.official)}<br>\
<strong style="font-size:1.4em;">{e(card.number)}</strong></p>
<h2 style="font-size:1.25em;margin:1em 0 0.5em;padding-top:0.75em;\
border-top:2px solid {INK};">{e(card.rules_heading)}</h2>
<ul style="margin:0 0 1em;padding-left:1.25em;">
{rules}
</ul>
<div role="note" style="background:{CALLOUT};border:3px solid {INK};border-radius:12px;\
padding:12px 16px;">
<p style="margin:0 0 0.25em;font-size:1.25em;font-weight:700;">{e(card.doubt)}</p>
<p style="margin:0;">{"<br>".join(e(line) for line in card.then_call)}</p>
</div>
</article>
</body>
</html>
"""
