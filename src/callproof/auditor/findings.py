"""What the bundle verifier says, by key, so that each reader gets it in their own language.

A :class:`Finding` is a key and its values, not a sentence: ``str()`` gives the English the
command line prints, and the auditor's report says the same thing in its reader's language. The
words are the ``v.<key>`` entries of ``callproof/data/report.<lang>.json``, one file per language
of :data:`~callproof.protocol.languages.LANGUAGES`, beside the rest of the report's words.

    >>> f = Finding.of("story.impossible", kind="ticket.claimed", ticket="t_1", state="closed",
    ...                since=2, why=Finding.of("why.after_closed"))
    >>> str(f).removeprefix("ticket.claimed of ticket t_1 is impossible: ")
    'the ticket is closed since line 2; nothing follows ticket.closed'

A value may itself be a finding (the reason inside a sentence). ``error`` is an exception's own
text, in English: a language may leave it out of its sentence (the line and the code still lead
to it). The report says ``state`` and ``outcome`` with its ``state.<value>`` and
``outcome.<value>`` words.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["PREFIX", "Finding", "words"]

#: The prefix of a finding's key among the report's words.
PREFIX = "v."


@functools.cache
def words(lang: str) -> dict[str, str]:
    """The report's words in ``lang``: key → text with ``{placeholders}`` (read once; not to
    be changed by the caller)."""
    raw = resources.files("callproof").joinpath(f"data/report.{lang}.json").read_text("utf-8")
    loaded: dict[str, str] = json.loads(raw)
    return loaded


_ENGLISH = words("en")


@dataclass(frozen=True)
class Finding:
    """One statement of the verifier: its key and its values (``name, value`` pairs). Frozen and
    plain, so that findings compare equal across processes (the signature scan's workers)."""

    key: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, key: str, **params: Any) -> Finding:
        if PREFIX + key not in _ENGLISH:
            raise KeyError(f"no words for the finding {key!r} in report.en.json")
        return cls(key, tuple(params.items()))

    def say(self, texts: Mapping[str, str], value: Callable[[str, Any], str]) -> str:
        """The finding in the words of ``texts`` (English where a key is missing), each value
        shown by ``value(name, value)``; a finding inside is said the same way."""
        key = PREFIX + self.key
        if dict(self.params).get("given") == 1 and key + ".one" in texts:
            key += ".one"  # "the 1 witness key given", not "key(s)"
        template = texts.get(key) or _ENGLISH[PREFIX + self.key]
        return template.format(**{name: v.say(texts, value) if isinstance(v, Finding)
                                  else value(name, v) for name, v in self.params})

    def __str__(self) -> str:
        return self.say(_ENGLISH, lambda _, v: str(v))

