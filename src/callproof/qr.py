"""QR codes as SVG, PNG and terminal text (the notice card, authenticator-app enrolment).

The modules come from the ``qrcode`` package; drawing them is done here, so every output is
plain: SVG is hand-written vector ``<rect>``s with no external references, PNG is drawn with
Pillow in pure black on white, and the terminal form uses half-block characters.

    >>> svg = qr_svg("https://shop.example/call")
    >>> svg.startswith("<svg") and "<rect" in svg
    True

Every function keeps the 4-module quiet zone the QR standard asks for (``border``); scanners
need it, so shrink it only where the surroundings are guaranteed white.
"""

from __future__ import annotations

import io
from html import escape
from typing import TYPE_CHECKING, Literal

import qrcode  # type: ignore[import-untyped, unused-ignore]
import qrcode.constants  # type: ignore[import-untyped, unused-ignore]

if TYPE_CHECKING:
    from PIL import Image

#: Error correction: L 7 %, M 15 %, Q 25 %, H 30 % of the code may be damaged and still read.
ErrorCorrection = Literal["L", "M", "Q", "H"]
_EC = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}
QUIET_ZONE = 4


def qr_matrix(text: str, *, error_correction: ErrorCorrection = "M",
              border: int = QUIET_ZONE) -> list[list[bool]]:
    """The modules, row by row, ``True`` for dark, with ``border`` light modules all round."""
    if border < 0:
        raise ValueError("border must be 0 or more")
    code = qrcode.QRCode(error_correction=_EC[error_correction], border=border)
    code.add_data(text.encode("utf-8"))
    code.make(fit=True)
    return [[bool(m) for m in row] for row in code.get_matrix()]


def qr_svg(text: str, *, size: str | None = None, error_correction: ErrorCorrection = "M",
           border: int = QUIET_ZONE, label: str | None = None, xmlns: bool = True) -> str:
    """A standalone ``<svg>`` element (usable as a file, inline in HTML, or nested in SVG).

    One module is one user unit; ``size`` (e.g. ``"240"`` or ``"60mm"``) sets width and height,
    otherwise the viewBox size is used. ``label`` becomes the accessible name (``role="img"``);
    without it the image is hidden from screen readers (use it where the text says the same).
    Dark modules are ``<rect>``s, one per horizontal run, over a white background.
    ``xmlns=False`` leaves out the namespace, which SVG inline in HTML does not need.
    """
    matrix = qr_matrix(text, error_correction=error_correction, border=border)
    n = len(matrix)
    dim = escape(size or str(n), quote=True)
    if label is not None:
        a11y = f' role="img" aria-label="{escape(label, quote=True)}"'
    else:
        a11y = ' aria-hidden="true"'
    ns = ' xmlns="http://www.w3.org/2000/svg"' if xmlns else ""
    parts = [
        f'<svg{ns} viewBox="0 0 {n} {n}" width="{dim}" '
        f'height="{dim}" shape-rendering="crispEdges"{a11y}>',
        f'<rect width="{n}" height="{n}" fill="#ffffff"/>',
        '<g fill="#000000">',
    ]
    for y, row in enumerate(matrix):
        x = 0
        while x < n:
            if not row[x]:
                x += 1
                continue
            start = x
            while x < n and row[x]:
                x += 1
            parts.append(f'<rect x="{start}" y="{y}" width="{x - start}" height="1"/>')
    parts.append("</g></svg>")
    return "".join(parts)


def qr_image(text: str, *, scale: int = 10, error_correction: ErrorCorrection = "M",
             border: int = QUIET_ZONE) -> Image.Image:
    """A Pillow image (mode ``"1"``): each module ``scale`` pixels square, black on white.

    Pillow is imported only when called, so the SVG and terminal forms never load it.
    """
    from PIL import Image

    if scale < 1:
        raise ValueError("scale must be 1 or more")
    matrix = qr_matrix(text, error_correction=error_correction, border=border)
    n = len(matrix)
    small = Image.new("1", (n, n), 1)
    small.putdata([0 if dark else 1 for row in matrix for dark in row])
    return small.resize((n * scale, n * scale), Image.Resampling.NEAREST)


def qr_png(text: str, *, scale: int = 10, error_correction: ErrorCorrection = "M",
           border: int = QUIET_ZONE) -> bytes:
    """The QR code as PNG bytes (black on white, ``scale`` pixels per module)."""
    image = qr_image(text, scale=scale, error_correction=error_correction, border=border)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def qr_terminal(text: str, *, error_correction: ErrorCorrection = "M",
                border: int = QUIET_ZONE, invert: bool = False) -> str:
    """The QR code as lines of half-block characters (two module rows per line).

    By default the *light* modules are drawn (``█``), which suits the usual light-on-dark
    terminal, as ``qrencode -t UTF8`` does; ``invert=True`` draws the dark modules instead, for
    dark-on-light terminals. Ends with a newline.
    """
    matrix = qr_matrix(text, error_correction=error_correction, border=border)
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))  # a light half-row below the quiet zone
    glyphs = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}
    lines = []
    for top, bottom in zip(matrix[0::2], matrix[1::2], strict=True):
        lines.append("".join(glyphs[(t == invert, b == invert)] for t, b in zip(top, bottom,
                                                                                 strict=True)))
    return "\n".join(lines) + "\n"
