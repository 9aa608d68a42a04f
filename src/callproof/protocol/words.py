"""Check words: the picture-and-word choices the customer taps, in three languages.

The agent's screen shows the right word once the phone number is confirmed; the customer's page
shows it among 4–6 choices. A scammer watching a shared screen sees the choices, not the answer.

    >>> right, choices = pick_words(6)
    >>> WORDS[right].text("zh-Hant")       # '西瓜'
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from importlib import resources

MIN_CHOICES, MAX_CHOICES = 4, 6


@dataclass(frozen=True)
class CheckWord:
    id: str
    emoji: str
    en: str
    zh_hant: str
    zh_hans: str

    def text(self, lang: str) -> str:
        """The word in ``en``, ``zh-Hant`` or ``zh-Hans`` (English for anything else)."""
        if lang == "zh-Hant":
            return self.zh_hant
        if lang == "zh-Hans":
            return self.zh_hans
        return self.en

    def to_dict(self, lang: str) -> dict[str, str]:
        return {"id": self.id, "emoji": self.emoji, "text": self.text(lang)}


def _load() -> dict[str, CheckWord]:
    raw = resources.files("callproof").joinpath("data/check_words.json").read_text("utf-8")
    words = {}
    for entry in json.loads(raw):
        word = CheckWord(entry["id"], entry["emoji"], entry["en"], entry["zh-Hant"],
                         entry["zh-Hans"])
        words[word.id] = word
    return words


WORDS: dict[str, CheckWord] = _load()
_IDS = sorted(WORDS)
_RANDOM = secrets.SystemRandom()  # the OS's CSPRNG, as `secrets` uses


def pick_words(count: int = MAX_CHOICES) -> tuple[str, list[str]]:
    """The right word's id and ``count`` distinct choices (it among them), drawn by ``secrets``."""
    if not MIN_CHOICES <= count <= MAX_CHOICES:
        raise ValueError(f"between {MIN_CHOICES} and {MAX_CHOICES} choices")
    choices = _RANDOM.sample(_IDS, count)
    return choices[_RANDOM.randrange(count)], choices
