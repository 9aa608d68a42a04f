"""Refresh the translation catalogues of the verifier app, and compile them.

    python scripts/update_translations.py          # extract, merge into the .po files, compile
    python scripts/update_translations.py --check  # exit 1 if a message lacks a translation

Translate new messages by editing verifier_app/translations/<locale>/LC_MESSAGES/messages.po
(zh_Hant for Taiwan, zh_Hans for the mainland: different words, not only different characters —
see ../shared/GLOSSARY.md), then run this again to compile the .mo files.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
CATALOGUES = ROOT / "verifier_app/translations"
LOCALES = ("zh_Hant", "zh_Hans")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only report missing translations")
    args = parser.parse_args()
    pot = CATALOGUES / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
                    str(ROOT / "babel.cfg"), "-k", "lazy_gettext", "--no-location",
                    "--omit-header", "-o", str(pot), str(ROOT)], check=True,
                   capture_output=True)
    with pot.open("rb") as f:
        template = read_po(f)
    missing = 0
    for locale in LOCALES:
        po_path = CATALOGUES / locale / "LC_MESSAGES" / "messages.po"
        with po_path.open("rb") as f:
            catalogue = read_po(f, locale=locale)
        catalogue.update(template)
        untranslated = [m.id for m in catalogue if m.id and (not m.string or m.fuzzy)]
        for message_id in untranslated:
            print(f"{locale}: untranslated: {message_id!r}")
        missing += len(untranslated)
        if not args.check:
            catalogue.obsolete.clear()
            with po_path.open("wb") as f:
                write_po(f, catalogue, no_location=True, width=100)
            with po_path.with_suffix(".mo").open("wb") as f:
                write_mo(f, catalogue)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
