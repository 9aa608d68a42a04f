"""The auditor's report as a page: inline SVG charts, tables, the style and the sections.

:mod:`callproof.auditor.facts` counts the facts, :mod:`callproof.auditor.report` picks the
words, and this module lays them out. Everything is generated as text: no script, no font, no
image, no external asset (the page's Content-Security-Policy lets the browser load nothing but
its own style). Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>``, and
its numbers are in a table next to it; it is drawn twice, for wide screens and for phones
(:class:`Fit`), and the style shows the one that fits. Colours meet WCAG contrast on white
(text ≥ 4.5:1, chart marks ≥ 3:1).

    >>> svg = columns("c1", "Calls per day", "…", ["10-01", "10-02"], [Series("Calls", [3, 5])])
"""

from __future__ import annotations

import base64
import functools
import hashlib
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any, Concatenate, ParamSpec

from callproof.auditor.bundle import Failure, VerifyReport
from callproof.auditor.facts import Facts, number
from callproof.auditor.findings import PREFIX, Finding
from callproof.protocol.events import REPORT_SCRIPTS as SCRIPTS

BLUE, AMBER, RED, GREEN, GREY = "#1f5fa6", "#a8520a", "#b3261e", "#1e6b3a", "#5b6675"
INK, MUTED, GRID, FAINT = "#1b2430", "#4a5563", "#d5dbe3", "#f7f0ef"
FONT = 12


@dataclass(frozen=True)
class Series:
    """One series of a chart: its name (for the legend) and a value per label."""

    name: str
    values: Sequence[float]
    color: str = BLUE


@dataclass(frozen=True)
class Fit:
    """One drawing of a chart: its width and font size in the drawing's units, the share of the
    wide drawing's height it takes, and the CSS class that shows it on screens of its size.

    Every chart is drawn twice and the page's style shows the drawing that fits the screen: the
    wide drawing, shrunk to a 390 px phone, would shrink its labels to about 5 px; the phone's
    drawing is about as wide as the phone, so its labels are drawn near their own size.
    """

    name: str
    width: int
    font: int
    height: float


WIDE, PHONE = Fit("wide", 960, FONT, 1.0), Fit("phone", 360, FONT + 1, 0.8)
RIGHT = 16  # room right of a plot of columns or a line
P = ParamSpec("P")


def _in_every_fit(draw: Callable[Concatenate[Fit, P], str]) -> Callable[P, str]:
    """``draw`` made to return its chart in every fit, the wide drawing first."""
    @functools.wraps(draw)
    def drawn(*args: P.args, **kwargs: P.kwargs) -> str:
        return "\n".join(draw(fit, *args, **kwargs) for fit in (WIDE, PHONE))
    return drawn


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def _nice_top(top: float, intervals: int = 4) -> tuple[float, float]:
    """An axis top and step (1, 2 or 5 × 10^k) that cover ``top`` in about ``intervals`` steps."""
    if top <= 0:
        return 1.0, 0.25 if intervals == 4 else 1.0 / intervals
    rough = top / intervals
    exp = 10 ** math.floor(math.log10(rough))
    step = next(m * exp for m in (1, 2, 2.5, 5, 10) if m * exp >= rough)
    if step < 1 and top >= 1:
        step = 1.0
    return step * math.ceil(top / step - 1e-9), step


def _svg_open(fit: Fit, chart_id: str, title: str, desc: str, height: float) -> list[str]:
    """The ``<svg>`` of one drawing; the phone's has its own ids (the page holds both)."""
    if fit is not WIDE:
        chart_id = f"{chart_id}-{fit.name}"
    return [f'<svg class="chart {fit.name}" viewBox="0 0 {fit.width} {height:g}" role="img" '
            f'aria-labelledby="{chart_id}-t {chart_id}-d">',
            f'<title id="{chart_id}-t">{escape(title)}</title>',
            f'<desc id="{chart_id}-d">{escape(desc)}</desc>']


def _legend(fit: Fit, series: Sequence[Series], left: float, y: float) -> tuple[list[str], float]:
    """The legend, its first line's baseline at ``y``, wrapped to the drawing's width; and where
    it ends below."""
    out, x, font = [], left, fit.font
    for s in series:
        wide = font + 2 + _text_width(s.name, font)
        if x > left and x + wide > fit.width:
            x, y = left, y + font + 8
        out.append(f'<rect x="{x:.1f}" y="{y - font + 3:.1f}" width="{font - 2}" '
                   f'height="{font - 2}" fill="{s.color}"/>')
        out.append(f'<text x="{x + font + 2:.1f}" y="{y:.1f}" font-size="{font}" fill="{INK}">'
                   f'{escape(s.name)}</text>')
        x += wide + font
    return out, y + 4


def _y_labels(top: float, step: float, fmt: Callable[[float], str]) -> list[str]:
    return [fmt(step * i) for i in range(round(top / step) + 1)]


def _y_axis(fit: Fit, top: float, step: float, left: float, y0: float, plot_h: float,
            fmt: Callable[[float], str]) -> list[str]:
    out = []
    for i, text in enumerate(_y_labels(top, step, fmt)):
        y = y0 - plot_h * step * i / top
        out.append(f'<line x1="{left}" x2="{fit.width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="{GRID}" stroke-width="1"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="{fit.font}" '
                   f'fill="{MUTED}" text-anchor="end">{escape(text)}</text>')
    return out


def _x_axis(fit: Fit, labels: Sequence[str], every: int, left: float, y0: float) -> list[str]:
    """Labels under the columns: every ``every``-th, or fewer if they would touch; the baseline."""
    slot = (fit.width - RIGHT - left) / max(1, len(labels))
    room = max((_text_width(x, fit.font) for x in labels), default=0) + fit.font
    every *= max(1, math.ceil(room / (slot * every)))
    out = [f'<text x="{left + slot * (i + 0.5):.1f}" y="{y0 + fit.font + 8}" '
           f'font-size="{fit.font}" fill="{MUTED}" text-anchor="middle">{escape(label)}</text>'
           for i, label in enumerate(labels) if i % every == 0]
    out.append(f'<line x1="{left}" x2="{fit.width - RIGHT}" y1="{y0}" y2="{y0}" stroke="{MUTED}"/>')
    return out


def _left(fit: Fit, top: float, step: float, fmt: Callable[[float], str]) -> int:
    """Room left of the plot for the widest number on the y axis."""
    return int(max(_text_width(x, fit.font) for x in _y_labels(top, step, fmt))) + fit.font


@_in_every_fit
def columns(fit: Fit, chart_id: str, title: str, desc: str, labels: Sequence[str],
            series: Sequence[Series], *, tick_every: int = 1,
            highlight: Mapping[int, str] | None = None, marks: Mapping[int, str] | None = None,
            fmt: Callable[[float], str] = number, height: int = 260) -> str:
    """Vertical columns, stacked when there are several series.

    ``highlight`` recolours single columns (e.g. a burst); ``marks`` writes a note above them;
    ``tick_every`` labels every so many columns at least (more apart if they would touch).
    """
    highlight, marks = highlight or {}, marks or {}
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top, step = _nice_top(max(totals, default=0))
    left, font = _left(fit, top, step, fmt), fit.font
    legend, legend_end = _legend(fit, series, left, font + 2) if len(series) > 1 else ([], 0.0)
    top_pad, bottom = max(34 if marks else 14, legend_end + 16), font + 16
    plot_h = height * fit.height - 34 - bottom  # ``height`` has room for one line on top
    y0 = top_pad + plot_h
    slot = (fit.width - RIGHT - left) / max(1, len(labels))
    bar = max(0.8, slot * (0.72 if len(labels) < 200 else 0.9))
    out = _svg_open(fit, chart_id, title, desc, y0 + bottom)
    out += _y_axis(fit, top, step, left, y0, plot_h, fmt) + legend
    for i in range(len(labels)):
        x = left + slot * i + (slot - bar) / 2
        y = float(y0)
        for s in series:
            h = plot_h * s.values[i] / top
            if h > 0:
                color = highlight.get(i, s.color)
                out.append(f'<rect x="{x:.2f}" y="{y - h:.2f}" width="{bar:.2f}" '
                           f'height="{h:.2f}" fill="{color}"/>')
            y -= h
    for i, note in marks.items():
        cx = left + slot * (i + 0.5)
        ty = max(top_pad - 4, y0 - plot_h * totals[i] / top - 6)
        room = _text_width(note, font) * 1.15  # bold
        anchor, tx = ("start", cx + 6) if cx + 6 + room <= fit.width else ("end", max(cx - 6, room))
        out.append(f'<text x="{tx:.1f}" y="{ty + 4:.1f}" font-size="{font}" font-weight="600" '
                   f'fill="{RED}" text-anchor="{anchor}">{escape(note)}</text>')
    out += _x_axis(fit, labels, tick_every, left, y0)
    out.append("</svg>")
    return "\n".join(out)


@_in_every_fit
def line(fit: Fit, chart_id: str, title: str, desc: str, labels: Sequence[str],
         values: Sequence[float | None], *, tick_every: int = 1, top: float = 1.0,
         fmt: Callable[[float], str] = percent, color: str = GREEN, height: int = 220) -> str:
    """A line with a dot per value; ``None`` (no data that day) leaves a gap."""
    left, top_pad, bottom = _left(fit, top, top / 4, fmt), 14, fit.font + 16
    plot_h = height * fit.height - top_pad - bottom
    y0 = top_pad + plot_h
    out = _svg_open(fit, chart_id, title, desc, y0 + bottom)
    out += _y_axis(fit, top, top / 4, left, y0, plot_h, fmt)
    slot = (fit.width - RIGHT - left) / max(1, len(labels))
    points: list[list[tuple[float, float]]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            points.append([])
            continue
        points[-1].append((left + slot * (i + 0.5), y0 - plot_h * min(v, top) / top))
    for run in points:
        if len(run) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" '
                       'stroke-width="2"/>')
        out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in run]
    out += _x_axis(fit, labels, tick_every, left, y0)
    out.append("</svg>")
    return "\n".join(out)


@_in_every_fit
def bars(fit: Fit, chart_id: str, title: str, desc: str, labels: Sequence[str],
         series: Sequence[Series], *, flagged: Sequence[int] = (),
         fmt: Callable[[float], str] = number) -> str:
    """Horizontal bars, one row per label, stacked by series; flagged rows on a tinted band.

    Labels longer than two fifths of the drawing go on a line of their own above their bar.
    """
    font = fit.font + 1
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    longest = max((_text_width(label, font) for label in labels), default=0)
    above = longest > fit.width * 0.4
    left = 0 if above else int(longest) + 24
    right = int(max((_text_width(fmt(t), font) for t in totals), default=0)) + 16
    label_h = font + 3 if above else 0
    row = label_h + 26
    legend, legend_end = _legend(fit, series, left, 16) if len(series) > 1 else ([], -2.0)
    top_pad = legend_end + 10
    height = top_pad + row * len(labels) + 8
    plot_w = fit.width - left - right
    top = max(totals, default=0) or 1
    out = _svg_open(fit, chart_id, title, desc, height) + legend
    for i, label in enumerate(labels):
        y = top_pad + row * i
        bar_y, mid = y + label_h + 5, y + label_h + (row - label_h) / 2 + 4
        bold = ' font-weight="700"' if i in flagged else ""
        if i in flagged:
            out.append(f'<rect x="0" y="{y:.1f}" width="{fit.width}" height="{row}" '
                       f'fill="{FAINT}"/>')
        anchor = f'x="{left}" y="{y + font:.1f}"' if above else \
            f'x="{left - 8}" y="{mid:.1f}" text-anchor="end"'
        out.append(f'<text {anchor} font-size="{font}" fill="{RED if i in flagged else INK}"'
                   f"{bold}>{escape(label)}</text>")
        x = float(left)
        for s in series:
            w = plot_w * s.values[i] / top
            if w > 0:
                out.append(f'<rect x="{x:.2f}" y="{bar_y:.1f}" width="{w:.2f}" '
                           f'height="{row - label_h - 10}" fill="{s.color}"/>')
            x += w
        out.append(f'<text x="{x + 6:.1f}" y="{mid:.1f}" font-size="{font}" '
                   f'fill="{INK}"{bold}>{escape(fmt(totals[i]))}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _text_width(text: str, size: int) -> float:
    """About how wide ``text`` is drawn: CJK characters take a full em, others about 0.6."""
    return sum(size if ord(c) >= 0x2E80 else 0.6 * size for c in text)


def table(caption: str, head: Sequence[str], rows: Sequence[Sequence[object]], *,
          numeric_from: int = 1, flagged: Sequence[int] = ()) -> str:
    """A data table; columns from ``numeric_from`` on are right-aligned numbers."""
    # A wide table scrolls inside its own box on a phone, never the page; the box is focusable
    # so that keyboard users can scroll it too (the table's caption names what is in it).
    out = [f'<div class="scroll" tabindex="0"><table><caption>{escape(caption)}</caption>'
           "<thead><tr>"]
    out += [f'<th scope="col"{_num(j, numeric_from)}>{escape(h)}</th>' for j, h in
            enumerate(head)]
    out.append("</tr></thead><tbody>")
    for i, r in enumerate(rows):
        out.append('<tr class="flag">' if i in flagged else "<tr>")
        for j, cell in enumerate(r):
            text = number(cell) if isinstance(cell, int | float) and not isinstance(cell, bool) \
                else str(cell)
            tag = "th" if j == 0 else "td"
            scope = ' scope="row"' if j == 0 else ""
            out.append(f"<{tag}{scope}{_num(j, numeric_from)}>{escape(text)}</{tag}>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _num(j: int, numeric_from: int) -> str:
    return ' class="num"' if j >= numeric_from else ""


#: The page's style: calm, printable, readable (also in the print preview a regulator files).
CSS = f"""
:root {{ color-scheme: light; }}
* {{ box-sizing: border-box; }}
body {{ margin: 0; background: #eef1f5; color: {INK};
  font: 16px/1.55 system-ui, -apple-system, "Segoe UI", "Noto Sans", "Noto Sans CJK TC",
  "Noto Sans CJK SC", "PingFang TC", "Microsoft JhengHei", sans-serif; }}
main {{ max-width: 64rem; margin: 0 auto; background: #fff; padding: 2.5rem 3rem 3rem;
  border-left: 1px solid {GRID}; border-right: 1px solid {GRID}; min-height: 100vh; }}
header {{ border-bottom: 3px solid {INK}; padding-bottom: 1rem; margin-bottom: 1.5rem; }}
h1 {{ font-size: 1.75rem; margin: 0 0 .25rem; line-height: 1.25; }}
h2 {{ font-size: 1.3rem; margin: 2.5rem 0 .5rem; padding-top: .75rem;
  border-top: 1px solid {GRID}; }}
h3 {{ font-size: 1.05rem; margin: 0 0 .25rem; }}
p {{ margin: .4rem 0 .8rem; }}
.meta {{ color: {MUTED}; margin: 0; }}
.meta span + span::before {{ content: " · "; }}
.verdict {{ border: 2px solid; border-left-width: 10px; border-radius: 4px; padding: 1rem 1.25rem;
  margin: 1rem 0; }}
.verdict.pass {{ border-color: {GREEN}; background: #eef6f0; }}
.verdict.fail {{ border-color: {RED}; background: #fbeeee; }}
.verdict .big {{ font-size: 1.35rem; font-weight: 700; margin: 0 0 .3rem; }}
.verdict.pass .big {{ color: {GREEN}; }}
.verdict.fail .big {{ color: {RED}; }}
.verdict.unpinned {{ border-color: {AMBER}; background: #fdf6ee; }}
.verdict.unpinned .big {{ color: {AMBER}; }}
.verdict ol {{ margin: .5rem 0 0; padding-left: 1.5rem; }}
.verdict li {{ margin-bottom: .35rem; overflow-wrap: anywhere; }}
.verdict .fcode {{ color: #555; font-size: .8rem; white-space: nowrap; }}
.warn {{ border-left: 4px solid {AMBER}; background: #fdf6ee; padding: .5rem .9rem; }}
dl.facts {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr));
  gap: .75rem; margin: 1rem 0; }}
dl.facts div {{ border: 1px solid {GRID}; border-radius: 4px; padding: .6rem .8rem; }}
dl.facts dt {{ color: {MUTED}; font-size: .85rem; }}
dl.facts dd {{ margin: 0; font-size: 1.4rem; font-weight: 650;
  font-variant-numeric: tabular-nums; }}
dl.kv {{ display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem;
  font-size: .92rem; }}
dl.kv dt {{ color: {MUTED}; }}
dl.kv dd {{ margin: 0; overflow-wrap: anywhere; }}
code {{ font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .88em; }}
ul.anomalies {{ list-style: none; padding: 0; margin: 1rem 0; }}
ul.anomalies li {{ border: 1px solid {GRID}; border-left: 6px solid {AMBER}; border-radius: 4px;
  padding: .75rem 1rem; margin: 0 0 .75rem; }}
ul.anomalies li.high {{ border-left-color: {RED}; }}
ul.anomalies .why {{ color: {MUTED}; margin-bottom: 0; }}
.none {{ border: 1px solid {GRID}; border-left: 6px solid {GREEN}; border-radius: 4px;
  padding: .75rem 1rem; }}
figure {{ margin: 1rem 0 .5rem; }}
svg.chart {{ width: 100%; height: auto; display: block; }}
/* Each chart is drawn twice (see Fit). Below 56rem the wide drawing's labels would shrink under
   10 px, so the phone's drawing shows instead, never much wider than it is drawn: its labels
   stay between 10 and 16 px. */
svg.chart.phone {{ display: none; max-width: 28rem; }}
@media screen and (max-width: 56rem) {{
  svg.chart.wide {{ display: none; }}
  svg.chart.phone {{ display: block; }}
}}
details {{ margin: .25rem 0 1rem; }}
summary {{ cursor: pointer; color: {BLUE}; font-weight: 600; }}
table {{ border-collapse: collapse; margin: .75rem 0; font-size: .92rem;
  font-variant-numeric: tabular-nums; }}
caption {{ text-align: left; font-weight: 600; padding-bottom: .3rem; }}
th, td {{ border-bottom: 1px solid {GRID}; padding: .3rem .8rem .3rem 0; text-align: left; }}
thead th {{ border-bottom: 2px solid {INK}; }}
.num {{ text-align: right; padding-left: .8rem; }}
tr.flag th, tr.flag td {{ background: {FAINT}; font-weight: 700; }}
tr.flag th {{ color: {RED}; }}
.sr {{ position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
  white-space: nowrap; }}
footer {{ margin-top: 3rem; color: {MUTED}; font-size: .88rem; border-top: 1px solid {GRID};
  padding-top: 1rem; }}
/* A table wider than the screen scrolls in its box, and a shadow at the box's edge shows that
   more of it is there: the white covers scroll with the table, the shadows stay put. */
.scroll {{ max-width: 100%; overflow-x: auto;
  background: linear-gradient(to right, #fff 40%, #fff0) left / 1.5rem 100% no-repeat local,
    linear-gradient(to left, #fff 40%, #fff0) right / 1.5rem 100% no-repeat local,
    radial-gradient(farthest-side at 0 50%, #1b243040, #1b243000) left / .6rem 100% no-repeat,
    radial-gradient(farthest-side at 100% 50%, #1b243040, #1b243000) right / .6rem 100%
    no-repeat; }}
@media (max-width: 40rem) {{
  main {{ padding: 1.25rem 1rem 2rem; border: 0; }}
  h1 {{ font-size: 1.45rem; overflow-wrap: anywhere; }}
  dl.kv {{ grid-template-columns: 1fr; }}
  dl.kv dd {{ margin-bottom: .4rem; }}
  dl.facts {{ grid-template-columns: repeat(2, minmax(0, 1fr)); }}
  dl.facts dd {{ font-size: 1.2rem; }}
  th, td {{ padding-right: .5rem; }}
  tbody th, td.num {{ white-space: nowrap; }}
  .verdict {{ padding: .75rem .85rem; border-left-width: 6px; }}
}}
@media print {{ body {{ background: #fff; }} main {{ border: 0; padding: 0; max-width: none; }}
  section, figure, li {{ break-inside: avoid; }} }}
"""


# --- the page ---------------------------------------------------------------------------------

MAX_FAILURES = 50  # verification failures listed one by one; the rest are counted

# The page may load nothing at all: no script, no image, no font, no connection; only its own
# <style>, named by its hash. Browsers enforce it.
_CSP = ('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src '{style}'; base-uri 'none'; form-action 'none'\">")


class ReportPage:
    """The report's HTML from the facts, the verdict and the strings of one language."""

    def __init__(self, facts: Facts, verdict: VerifyReport, words: Mapping[str, str],
                 lang: str, *, pinned: bool, now: datetime) -> None:
        self.f, self.v, self.t, self.lang, self.pinned, self.now = \
            facts, verdict, words, lang, pinned, now
        self.days = facts.day_list()
        self.labels = [d.strftime("%m-%d") for d in self.days]
        #: The verifier's sentences (``v.*``), escaped once; the values go in as HTML.
        self.findings = {k: escape(v) for k, v in words.items() if k.startswith(PREFIX)}
        self.tick = max(1, math.ceil(len(self.days) / 10))

    def s(self, key: str, **params: Any) -> str:
        """A string of the report's language, filled in and escaped. A language with singular
        forms has ``KEY.one`` beside ``KEY``: it is used when the string's count is 1 (the
        first of ``n``, ``count``, ``tickets`` it has) — "1 failure", not "1 failure(s)"."""
        text = self.t[key]
        one = self.t.get(key + ".one")
        if one is not None:
            count = next((params[p] for p in ("n", "count", "tickets") if p in params), None)
            if str(count) == "1":
                text = one
        return escape(text.format(**params))

    def html(self) -> str:
        f, s, o = self.f, self.s, self.f.options
        cp = self.v.checkpoint
        issuer = f.issuer or (cp.origin.split("/")[0] if cp else "")
        period = f"{self.days[0]} – {self.days[-1]}" if self.days else "—"
        at = self.now.astimezone(o.zone).strftime("%Y-%m-%d %H:%M")  # the zone is named above
        sections = [self.verdict(), self.key_figures(), self.anomalies(), self.calls(),
                    self.verified(), self.failed(), self.no_and_wrong(), self.agents(),
                    self.reveals(), self.reports(), self.about()]
        return "\n".join([
            "<!DOCTYPE html>", f'<html lang="{escape(self.lang)}">', "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            _CSP.format(style=_style_hash()), '<meta name="referrer" content="no-referrer">',
            f"<title>{s('title', issuer=issuer)}</title>", f"<style>{CSS}</style>", "</head>",
            "<body><main>", "<header>", f"<h1>{s('title', issuer=issuer)}</h1>",
            f'<p class="meta"><span>{s("period", period=period)}</span>'
            f'<span>{s("zone", tz=o.tz, hours=o.hours_text())}</span>'
            f'<span>{s("generated", at=at)}</span></p>', "</header>",
            *[x for x in sections if x], f"<footer><p>{s('footer')}</p></footer>",
            "</main></body></html>", ""])

    def section(self, key: str, *parts: str) -> str:
        return f'<section aria-labelledby="h-{key}"><h2 id="h-{key}">{self.s("h." + key)}</h2>' \
            + "\n".join(p for p in parts if p) + "</section>"

    def figure(self, svg: str, data: str) -> str:
        """A chart, then its numbers behind a disclosure (no script needed)."""
        return f'<figure>{svg}</figure><details><summary>{self.s("show_numbers")}</summary>' \
            f"{data}</details>"

    def verdict(self) -> str:
        v, s = self.v, self.s
        cp = v.checkpoint
        if v.ok and not self.pinned:
            # The bundle agrees with itself, by a key it brought along: not a green verdict.
            box = f'<div class="verdict unpinned"><p class="big">! {s("unpinned")}</p><p>' \
                f"{s('unpinned.text', entries=number(v.entries))}</p>"
        elif v.ok:
            box = f'<div class="verdict pass"><p class="big">✓ {s("pass")}</p><p>' \
                f"{s('pass.text', entries=number(v.entries), tickets=number(v.tickets))}</p>"
        else:
            shown = v.failures[:MAX_FAILURES]
            items = "".join(f"<li>{self.failure(x)}</li>" for x in shown)
            more = f"<p>{s('fail.more', n=number(len(v.failures) - len(shown)))}</p>" \
                if len(v.failures) > len(shown) else ""
            box = f'<div class="verdict fail"><p class="big">✗ {s("fail", n=len(v.failures))}' \
                f"</p><p>{s('fail.text')}</p><p>{s('fail.quoted')}</p><ol>{items}</ol>{more}"
        facts = [(s("cp.log"), escape(cp.origin) if cp else "—"),
                 (s("cp.size"), number(cp.size) if cp else "—"),
                 (s("cp.root"), f"<code>{_b64(cp.root)}</code>" if cp else "—"),
                 (s("cp.key"), s("cp.pinned") if self.pinned else s("cp.unpinned")),
                 (s("cp.sha"), f"<code>{self.f.sha256}</code>")]
        kv = "".join(f"<dt>{k}</dt><dd>{val}</dd>" for k, val in facts)
        warnings = "".join(f'<p class="warn">{self.say(w)}</p>' for w in v.warnings)
        return self.section("verdict", f'{box}<dl class="kv">{kv}</dl></div>', warnings)

    def failure(self, failure: Failure) -> str:
        """One failure of the verdict: its line, what it is in words, and its code — the one
        ``callproof audit verify --json`` prints beside the verifier's English."""
        where = self.s("fail.line", line=failure.line) if failure.line is not None else ""
        code = f' <code class="fcode">{escape(failure.code)}</code>' if failure.code else ""
        return where + self.say(failure.finding) + code

    def say(self, finding: Finding | str) -> str:
        """A finding of the verifier in the report's language, as HTML: names, ids and hashes
        as code; a ticket's state and a signature's outcome in words; plain text (a finding
        made elsewhere) as it is, marked English."""
        if isinstance(finding, str):
            return f'<span lang="en">{escape(finding)}</span>'
        t = self.t

        def value(name: str, v: Any) -> str:
            word = t.get(f"{name}.{v}") if name in ("state", "outcome") else None
            if word is not None:
                return escape(word)
            if isinstance(v, int):
                return str(v)
            return f'<code lang="en">{escape(str(v))}</code>' if name == "error" else \
                f"<code>{escape(str(v))}</code>"

        return finding.say(self.findings, value)

    def key_figures(self) -> str:
        f, s = self.f, self.s
        days = f.days.values()
        issued, checked = sum(d.issued for d in days), sum(d.checked for d in days)
        figures = [("fig.calls", number(issued)), ("fig.checked", _pct(checked, issued)),
                   ("fig.verified", _pct(sum(d.verified for d in days), checked)),
                   ("fig.failed", number(sum(f.failed_by_hour.values()))),
                   ("fig.reports", number(f.reports)), ("fig.agents", number(len(f.agents))),
                   ("fig.anomalies", number(len(f.anomalies)))]
        cells = "".join(f"<div><dt>{s(k)}</dt><dd>{val}</dd></div>" for k, val in figures)
        return f'<section aria-labelledby="h-figures"><h2 id="h-figures" class="sr">' \
            f'{s("h.figures")}</h2><dl class="facts">{cells}</dl></section>'

    def anomalies(self) -> str:
        s = self.s
        if not self.f.anomalies:
            return self.section("anomalies", f'<p class="none">{s("no_anomalies")}</p>')
        items = []
        for a in sorted(self.f.anomalies, key=lambda a: not a.high):
            key = "a." + a.kind
            items.append(f'<li class="{"high" if a.high else "medium"}"><h3>'
                         f"{s(key + '.title', **a.params)}</h3><p>{s(key, **a.params)}</p>"
                         f'<p class="why">{s(key + ".why")}</p></li>')
        return self.section("anomalies", f"<p>{s('anomalies.intro')}</p>",
                            f'<ul class="anomalies">{"".join(items)}</ul>')

    def calls(self) -> str:
        s, f = self.s, self.f
        after = [f.day(d).after_hours for d in self.days]
        inside = [f.day(d).issued - a for d, a in zip(self.days, after, strict=True)]
        svg = columns("c-calls", s("h.calls"), s("calls.desc"), self.labels,
                      [Series(s("inside"), inside, BLUE), Series(s("outside"), after, AMBER)],
                      tick_every=self.tick)
        rows = [(str(d), i + a, a) for d, i, a in zip(self.days, inside, after, strict=True)]
        return self.section(
            "calls", f"<p>{s('calls.text', hours=f.options.hours_text())}</p>",
            self.figure(svg, table(s("h.calls"), [s("col.day"), s("col.calls"), s("outside")],
                                   rows)))

    def verified(self) -> str:
        s, f = self.s, self.f
        share: list[float | None] = []
        rows = []
        for d in self.days:
            c = f.day(d)
            share.append(c.verified / c.checked if c.checked else None)
            rows.append((str(d), c.issued, c.checked, c.verified, _pct(c.verified, c.checked)))
        svg = line("c-verified", s("h.verified"), s("verified.desc"), self.labels, share,
                   tick_every=self.tick)
        head = [s("col.day"), s("col.calls"), s("col.checked"), s("col.verified"),
                s("col.share")]
        return self.section("verified", f"<p>{s('verified.text')}</p>",
                            self.figure(svg, table(s("h.verified"), head, rows)))

    def failed(self) -> str:
        s, f = self.s, self.f
        hours = f.hour_list()
        values = [f.failed_by_hour.get(h, 0) for h in hours]
        bursts = set(f.bursts)
        red = {i: RED for i, h in enumerate(hours) if h in bursts}
        marks = {i: f"{f.local(hours[i]):%m-%d %H:00} · {number(values[i])}"
                 for i in sorted(red, key=lambda i: -values[i])[:3]}
        labels = [f.local(h).strftime("%m-%d") for h in hours]
        svg = columns("c-failed", s("h.failed"), s("failed.desc"), labels,
                      [Series(s("col.failed"), values, BLUE)], tick_every=24 * self.tick,
                      highlight=red, marks=marks)
        busy = [(h, n) for h, n in zip(hours, values, strict=True) if n]
        rows = [(f.hour_text(h), n) for h, n in busy]
        flagged = [i for i, (h, _) in enumerate(busy) if h in bursts]
        return self.section("failed", f"<p>{s('failed.text')}</p>", self.figure(
            svg, table(s("h.failed"), [s("col.hour"), s("col.failed")], rows, flagged=flagged)))

    def no_and_wrong(self) -> str:
        s, f = self.s, self.f
        denied = [f.day(d).denied for d in self.days]
        wrong = [f.day(d).wrong_word for d in self.days]
        svg = columns("c-no", s("h.no"), s("no.desc"), self.labels,
                      [Series(s("col.denied"), denied, RED), Series(s("col.wrong"), wrong, AMBER)],
                      tick_every=self.tick, height=200)
        rows = [(str(d), n, w) for d, n, w in zip(self.days, denied, wrong, strict=True) if n or w]
        return self.section("no", f"<p>{s('no.text')}</p>", self.figure(
            svg, table(s("h.no"), [s("col.day"), s("col.denied"), s("col.wrong")], rows)))

    def agents(self) -> str:
        s, f = self.s, self.f
        order = sorted(f.agents.items(), key=lambda kv: (-kv[1].issued, kv[0]))
        far = {a.params["agent"] for a in f.anomalies if a.kind == "far_above"}
        flagged = [i for i, (a, _) in enumerate(order) if a in far]
        counts = [c.issued for _, c in order]
        med = statistics.median(counts) if counts else 0
        mad = statistics.median(abs(n - med) for n in counts) if counts else 0
        svg = bars("c-agents", s("h.agents"), s("agents.desc"), [a for a, _ in order],
                   [Series(s("inside"), [c.issued - c.after_hours for _, c in order], BLUE),
                    Series(s("outside"), [c.after_hours for _, c in order], AMBER)],
                   flagged=flagged)
        rows = [(a, c.issued, c.after_hours, c.verified, c.denied,
                 f"{c.issued / med:.1f}×" if med else "—",
                 f"{0.6745 * (c.issued - med) / mad:.1f}" if mad else "—") for a, c in order]
        head = [s("col.agent"), s("col.calls"), s("outside"), s("col.verified"),
                s("col.denied"), s("col.ratio"), s("col.z")]
        return self.section(
            "agents", f"<p>{s('agents.text', ratio=number(f.options.far_above))}</p>",
            f"<figure>{svg}</figure>", table(s("h.agents"), head, rows, flagged=flagged))

    def reveals(self) -> str:
        s, f = self.s, self.f
        if not f.reveals:
            return ""  # no reveal events in this bundle (or in this version of the log)
        kinds = sorted({k for _, k in f.reveals})
        names = [self.t.get(k, k) for k in kinds]
        series = [Series(name, [f.reveals[(d, k)] for d in self.days], (BLUE, AMBER, GREY)[i % 3])
                  for i, (k, name) in enumerate(zip(kinds, names, strict=True))]
        svg = columns("c-reveals", s("h.reveals"), s("reveals.desc"), self.labels, series,
                      tick_every=self.tick, height=200)
        rows = [(str(d), *(f.reveals[(d, k)] for k in kinds)) for d in self.days
                if any(f.reveals[(d, k)] for k in kinds)]
        return self.section("reveals", f"<p>{s('reveals.text')}</p>", self.figure(
            svg, table(s("h.reveals"), [s("col.day"), *names], rows)))

    def reports(self) -> str:
        s, f = self.s, self.f
        if not f.reports:
            return self.section("reports", f"<p>{s('reports.none')}</p>")
        order = [x for x in SCRIPTS if f.report_scripts[x]] + \
            sorted(x for x in f.report_scripts if x not in SCRIPTS)
        names = [self.t.get("script." + x, x) for x in order]
        values = [f.report_scripts[x] for x in order]
        svg = bars("c-reports", s("h.reports"), s("reports.desc"), names,
                   [Series(s("col.reports"), values, BLUE)])
        text = s("reports.text", n=number(f.reports), with_number=number(f.reports_with_number))
        per_day = [f.reports_by_day[d] for d in self.days]
        daily = columns("c-reports-day", s("reports.per_day"), s("reports.per_day"),
                        self.labels, [Series(s("col.reports"), per_day, BLUE)],
                        tick_every=self.tick, height=170)
        rows = [(str(d), n) for d, n in zip(self.days, per_day, strict=True) if n]
        return self.section(
            "reports", f"<p>{text}</p>",
            self.figure(svg, table(s("h.reports"), [s("col.script"), s("col.reports")],
                                   list(zip(names, values, strict=True)))),
            f"<h3>{s('reports.per_day')}</h3>",
            self.figure(daily, table(s("reports.per_day"), [s("col.day"), s("col.reports")],
                                     rows)))

    def about(self) -> str:
        s, f, o = self.s, self.f, self.f.options
        method = s("about.method", ratio=number(o.far_above), burst=number(o.burst_ratio),
                   floor=o.burst_floor, hours=o.hours_text(), tz=o.tz)
        return self.section("about", f"<p>{s('about.source', entries=number(f.entries))}</p>",
                            f"<p>{method}</p>", f"<p>{s('about.privacy')}</p>")


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "—"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _style_hash() -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(CSS.encode("utf-8")).digest()).decode()
