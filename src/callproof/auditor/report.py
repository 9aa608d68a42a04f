"""The auditor's report: one self-contained HTML file made from an export bundle alone.

It reads only the bundle's files — never the store — and puts the verification verdict of
:func:`~callproof.auditor.bundle.verify_bundle` first; then the anomalies, explained in plain words,
and the figures behind them (charts as inline SVG, each with its table). No script, no external
asset, nothing personal: agents appear by id, customers not at all.

    >>> verdict = write_report("bundle/", "report.html", lang="zh-Hant", log_key=vkey,
    ...                        options=ReportOptions.parse_hours("08:00-20:00", "Asia/Taipei"))
    >>> verdict.ok
    True

The facts and anomalies are counted by :mod:`callproof.auditor.facts`, in the company's time
zone; the page is laid out by :mod:`callproof.auditor.charts`; the words, one file per language
of :data:`~callproof.protocol.languages.LANGUAGES`, are ``callproof/data/report.<lang>.json``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callproof.auditor.bundle import VerifyReport, verify_bundle
from callproof.auditor.charts import ReportPage
from callproof.auditor.facts import ReportOptions, read_facts
from callproof.auditor.findings import words
from callproof.protocol.languages import LANGUAGES

__all__ = ["STRINGS", "ReportOptions", "render_report", "write_report"]


def render_report(directory: str | os.PathLike[str], *, lang: str = "en",
                  options: ReportOptions | None = None, log_key: str | None = None,
                  previous: str | bytes | None = None, now: datetime | None = None,
                  verdict: VerifyReport | None = None, trust_bundle_key: bool = False,
                  progress: Callable[[int], None] | None = None) -> str:
    """The report's HTML for the bundle in ``directory``, verified here unless ``verdict`` is
    given (``log_key`` pins the log key; ``previous`` is an earlier checkpoint to extend).

    Without a pinned key the verdict fails, or, with ``trust_bundle_key``, says that the bundle
    only agrees with itself: never the green "verifies" of a pinned key."""
    if lang not in STRINGS:
        raise ValueError(f"no report language {lang!r}; use one of {', '.join(LANGUAGES)}")
    facts = read_facts(directory, options, progress=progress)
    if verdict is None:
        verdict = verify_bundle(directory, log_key=log_key, previous=previous,
                                trust_bundle_key=trust_bundle_key)
    return ReportPage(facts, verdict, STRINGS[lang], lang, pinned=verdict.pinned,
                      now=now or datetime.now(UTC)).html()


def write_report(directory: str | os.PathLike[str], out: str | os.PathLike[str], *,
                 log_key: str | None = None, previous: str | bytes | None = None,
                 trust_bundle_key: bool = False, **kwargs: Any) -> VerifyReport:
    """Verify the bundle and write its report to ``out``; returns the verdict."""
    verdict = verify_bundle(directory, log_key=log_key, previous=previous,
                            trust_bundle_key=trust_bundle_key)
    html = render_report(directory, log_key=log_key, verdict=verdict, **kwargs)
    Path(out).write_text(html, "utf-8")
    return verdict


# --- the report's words ---------------------------------------------------------------------
# English, Taiwan's 繁體中文 and mainland 简体中文, each written for its readers (GLOSSARY.md),
# the verifier's findings (``v.*``, :mod:`callproof.auditor.findings`) among them.

STRINGS: dict[str, dict[str, str]] = {lang: words(lang) for lang in LANGUAGES}
