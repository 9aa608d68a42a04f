"""`callproof notice`: the anti-fraud notice card as PNG, SVG or HTML."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click

from callproof._cli._common import data_dir
from callproof.errors import NoticeError
from callproof.notice import FORMATS, normalise_language, render_notice

_SUFFIXES = {".png": "png", ".svg": "svg", ".html": "html", ".htm": "html"}


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (a temporary file, then a rename)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as e:
        raise NoticeError(f"cannot write {path}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # a card to print or publish: nothing secret in it  # noqa: S103
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise NoticeError(f"cannot write {path}: {e.strerror or e}") from e


@click.command()
@click.option("--lang", default="en", show_default=True, metavar="en|zh-Hant|zh-Hans",
              help="The card's language: English, Traditional Chinese (Taiwan) or Simplified "
                   "Chinese (mainland).")
@click.option("--format", "fmt", metavar="png|svg|html",
              help="PNG to print (1200 px wide), SVG, or self-contained HTML for an e-mail or an "
                   "order page. Default: from --out's suffix.")
@click.option("--out", type=click.Path(path_type=Path),
              help="The file to write (default: standard output; a PNG needs --out or a pipe).")
@click.pass_context
def notice(ctx: click.Context, lang: str, fmt: str | None, out: Path | None) -> None:
    """The anti-fraud notice card for receipts, order pages, packing slips and e-mails.

    It shows the genuine call check page (as text and as a QR code), the official number, the
    national anti-fraud hotline and how our calls work, from the company profile in config.toml.
    """
    lang = normalise_language(lang)
    if fmt is None and out is not None:
        fmt = _SUFFIXES.get(out.suffix.lower())
    if fmt is None:
        raise NoticeError("say which --format: png, svg or html")
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise NoticeError(f"unknown format {fmt!r}: use png, svg or html")
    config = data_dir(ctx).load()
    company = config.company
    data = render_notice(company, lang, fmt,  # bytes: UTF-8 for SVG and HTML, on any locale
                         voice_number=config.voice.number)
    if out is not None:
        _write(out, data)
        click.echo(f"wrote the {lang} notice card to {out}", err=True)
        return
    if fmt == "png" and sys.stdout.isatty():
        raise NoticeError("a PNG is not for the terminal: use --out FILE.png or a pipe")
    click.echo(data, nl=False)  # bytes go to the binary stream as they are
