"""Shape and distinctness checks for ``src/callproof/data/check_words.json``.

How the list was chosen
-----------------------
The customer sees six of these words on the check page and taps the one the agent says on the
phone. Many customers are elderly, the line may be bad, and the page may be small, so every entry
had to pass all of the following, in each of the three languages:

* **Concrete and pictured.** An everyday noun (fruit and food, animals, weather, household objects,
  vehicles) that one emoji clearly depicts. Each emoji is a single code point, from Unicode 10 or
  earlier with one exception (soap, Unicode 11), that shows as a colour picture without a variation
  selector: no ZWJ sequences, skin tones or flags. Emoji that look alike at small size were not
  both kept (tangerine/peach, cat/tiger/lion, dolphin/whale, crab/shrimp, socks/scarf,
  watch/alarm clock, lollipop/ice cream, strawberry/cherries/tomato, watermelon/pizza/sandwich).
* **Harmless.** Nothing about money, prizes, banks, phones, police, weapons, religion, politics,
  illness or insults (so no gift, key, lock, knife, skull, flag, dragon, turtle 烏龜, Taiwanese
  機車 for a scooter, 小鳥, cherry blossom or maple leaf).
* **Distinct in sound, English.** No two words that rhyme or sound alike over a phone: apple was
  dropped for pineapple, frog for dog, house for horse, parrot for carrot, guitar for star,
  airplane for train, spoon for balloon, crown for cow, broom for mushroom.
* **Distinct in sound, Mandarin** (both scripts, tones included). No homophones or near-homophones,
  no word inside another (猫/熊猫, 马/斑马, 鱼/章鱼, 鼠/袋鼠), no shared first character, and
  no rhyming pairs of the same shape (太阳/绵羊, 玫瑰/乌龟, 芒果/糖果, 磁铁/地铁, 饭团/帆船,
  手錶/水餃, 电视/电池, 老鼠/老鹰, 鸡/鸭, 椰子/鸭子). 1–3 characters, two where possible.
* **Regional vocabulary, not conversion.** zh-Hant is what people say in Taiwan and zh-Hans what
  people say in mainland China: 鳳梨/菠萝, 紅蘿蔔/胡萝卜, 計程車/出租车, 公車/公交车, 腳踏車/自行车,
  捷運/地铁, 水餃/饺子, 無尾熊/考拉, 洋裝/连衣裙, 迴紋針/回形针, 球鞋/运动鞋, 乳牛/奶牛,
  幸運草/四叶草, 煙火/烟花, 噴水池/喷泉.

The ``id`` is what the form posts, so it is stable: rename the words, never the id.
"""

from __future__ import annotations

import json
import re
from itertools import combinations
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "src/callproof/data/check_words.json"
FIELDS = ("id", "emoji", "en", "zh-Hant", "zh-Hans")
LANGS = ("en", "zh-Hant", "zh-Hans")
ZH = ("zh-Hant", "zh-Hans")

SLUG = re.compile(r"[a-z]+(?:-[a-z]+)*")
ENGLISH = re.compile(r"[a-z]+(?:[ -][a-z]+)*")
CJK_1_TO_3 = re.compile(r"[\u4e00-\u9fff]{1,3}")

# Pairs of English words whose last three letters match but which still sound clearly different.
# Each needs a reason; anything that really rhymes must not be listed here but replaced.
ENGLISH_SAME_ENDING_ALLOWED = {
    # "-ain" is only spelling: FOUN-tin ends in an unstressed schwa syllable, TRAIN is one
    # stressed syllable with the "ay" vowel, so they do not rhyme.
    frozenset({"fountain", "train"}),
}

# Entries whose Taiwan and mainland words are different words, not the same word in two scripts.
REGIONAL = {
    "pineapple": ("鳳梨", "菠萝"),
    "taxi": ("計程車", "出租车"),
    "bicycle": ("腳踏車", "自行车"),
    "bus": ("公車", "公交车"),
    "subway": ("捷運", "地铁"),
}


@pytest.fixture(scope="module")
def words() -> list[dict[str, str]]:
    return json.loads(DATA.read_text(encoding="utf-8"))


def test_file_is_utf8_pretty_printed_not_ascii_escaped() -> None:
    text = DATA.read_text(encoding="utf-8")
    assert "\\u" not in text
    assert "西瓜" in text
    assert text.startswith("[\n  {\n    \"id\": ")


def test_enough_entries(words: list[dict[str, str]]) -> None:
    assert len(words) >= 64


def test_every_entry_has_exactly_the_fields_none_empty(words: list[dict[str, str]]) -> None:
    for entry in words:
        assert tuple(entry) == FIELDS, entry
        for field in FIELDS:
            assert isinstance(entry[field], str) and entry[field].strip() == entry[field] != "", (
                entry, field)


def test_watermelon_example_present(words: list[dict[str, str]]) -> None:
    assert {"id": "watermelon", "emoji": "🍉", "en": "watermelon", "zh-Hant": "西瓜",
            "zh-Hans": "西瓜"} in words


def test_ids_unique_and_slug_shaped(words: list[dict[str, str]]) -> None:
    ids = [entry["id"] for entry in words]
    assert len(ids) == len(set(ids))
    for word_id in ids:
        assert SLUG.fullmatch(word_id), word_id


def test_emoji_unique(words: list[dict[str, str]]) -> None:
    emoji = [entry["emoji"] for entry in words]
    assert len(emoji) == len(set(emoji))


def test_emoji_are_plain(words: list[dict[str, str]]) -> None:
    """No ZWJ sequences, skin tones, flags or tag sequences; one picture, one code point."""
    for entry in words:
        emoji = entry["emoji"]
        assert "\u200d" not in emoji, entry
        assert not any(0x1F3FB <= ord(c) <= 0x1F3FF for c in emoji), entry  # skin tones
        assert not any(0x1F1E6 <= ord(c) <= 0x1F1FF for c in emoji), entry  # flags
        assert not any(0xE0000 <= ord(c) <= 0xE007F for c in emoji), entry  # tags
        assert len(emoji) == 1, entry


@pytest.mark.parametrize("lang", LANGS)
def test_words_unique_per_language(words: list[dict[str, str]], lang: str) -> None:
    texts = [entry[lang] for entry in words]
    assert len(texts) == len(set(texts))


@pytest.mark.parametrize("lang", ZH)
def test_chinese_words_are_one_to_three_cjk_characters(words: list[dict[str, str]],
                                                       lang: str) -> None:
    for entry in words:
        assert CJK_1_TO_3.fullmatch(entry[lang]), entry


@pytest.mark.parametrize("lang", ZH)
def test_chinese_first_characters_distinct(words: list[dict[str, str]], lang: str) -> None:
    seen: dict[str, str] = {}
    for entry in words:
        first = entry[lang][0]
        assert first not in seen, f"{entry[lang]} and {seen.get(first)} both start with {first}"
        seen[first] = entry[lang]


@pytest.mark.parametrize("lang", ZH)
def test_no_chinese_word_inside_another(words: list[dict[str, str]], lang: str) -> None:
    for a, b in combinations(words, 2):
        assert a[lang] not in b[lang] and b[lang] not in a[lang], (a[lang], b[lang])


def test_taiwan_and_mainland_vocabulary_differ(words: list[dict[str, str]]) -> None:
    by_id = {entry["id"]: entry for entry in words}
    for word_id, (hant, hans) in REGIONAL.items():
        assert (by_id[word_id]["zh-Hant"], by_id[word_id]["zh-Hans"]) == (hant, hans)
    # Different words, not a script conversion: the two share no character at all.
    different_words = [entry["id"] for entry in words
                       if not set(entry["zh-Hant"]) & set(entry["zh-Hans"])]
    assert len(different_words) >= 8, different_words


def test_english_words_are_lowercase_letters(words: list[dict[str, str]]) -> None:
    for entry in words:
        assert ENGLISH.fullmatch(entry["en"]), entry


def test_english_rough_rhyme_guard(words: list[dict[str, str]]) -> None:
    clashes = [
        (a["en"], b["en"]) for a, b in combinations(words, 2)
        if a["en"][-3:] == b["en"][-3:]
        and frozenset({a["en"], b["en"]}) not in ENGLISH_SAME_ENDING_ALLOWED
    ]
    assert not clashes


def test_rhyme_allow_list_is_not_stale(words: list[dict[str, str]]) -> None:
    english = {entry["en"] for entry in words}
    for pair in ENGLISH_SAME_ENDING_ALLOWED:
        assert pair <= english, pair
        a, b = sorted(pair)
        assert a[-3:] == b[-3:], pair
