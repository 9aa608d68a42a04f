"""What the voice line says, in English, zh-Hant (國語, Taiwan wording) and zh-Hans (普通话,
mainland wording): the same words as the check page and the failure page (GLOSSARY.md), in
short spoken sentences, one instruction each.

Each prompt is a template per language; ``{…}`` fields are filled in per call (names, times,
numbers spoken digit by digit). A prompt without fields is *static*: the company may supply a
recording of it (:mod:`callproof.voice.prompts`).

    >>> text("enter_code", "zh-Hant")
    '請輸入客服人員給您的 9 位數來電確認碼，再按井字鍵。要重新輸入，請按米字鍵。'
"""

from __future__ import annotations

import string

#: The languages the voice line speaks, and the key that chooses each (1, 2, 3). Room for
#: 台語 (nan-Hant-TW) and 粵語 (yue-Hant): add a key here, texts below, and a voice in prompts.
LANGUAGE_KEYS: dict[str, str] = {"1": "en", "2": "zh-Hant", "3": "zh-Hans"}
VOICE_LANGUAGES = tuple(LANGUAGE_KEYS.values())

_TEXTS: dict[str, dict[str, str]] = {
    # Said before the language is chosen: each language offers itself.
    "choose_language": {
        "en": "This is the {company} call check line. For English, press 1.",
        "zh-Hant": "這是{company}的來電查證專線。國語請按 2。",
        "zh-Hans": "这是{company}的来电查证专线。普通话请按 3。",
    },
    "enter_code": {
        "en": "Key in the 9-digit call code the agent gave you, then press the hash key. "
              "To start again, press star.",
        "zh-Hant": "請輸入客服人員給您的 9 位數來電確認碼，再按井字鍵。要重新輸入，請按米字鍵。",
        "zh-Hans": "请输入客服人员给您的 9 位来电确认码，再按井号键。要重新输入，请按星号键。",
    },
    "start_again": {
        "en": "Start again.",
        "zh-Hant": "請重新輸入。",
        "zh-Hans": "请重新输入。",
    },
    "code_format": {
        "en": "A call code has 9 digits.",
        "zh-Hant": "來電確認碼有 9 個數字。",
        "zh-Hans": "来电确认码有 9 个数字。",
    },
    "code_typo": {
        "en": "One digit of the call code is not right. Check the code and key it in again.",
        "zh-Hant": "來電確認碼有一個數字不對。請核對後重新輸入。",
        "zh-Hans": "来电确认码有一个数字不对。请核对后重新输入。",
    },
    "verified": {
        "en": "Yes. This is {company}. {agent} from {department} called you at {time}, "
              "about: {reason}.",
        "zh-Hant": "已確認：這是{company}的來電。{department}的{agent}在{time}打電話給您，"
                   "來電事由：{reason}。",
        "zh-Hans": "已确认：这是{company}的来电。{department}的{agent}在{time}给您打电话，"
                   "来电事由：{reason}。",
    },
    "verified_no_department": {
        "en": "Yes. This is {company}. {agent} called you at {time}, about: {reason}.",
        "zh-Hant": "已確認：這是{company}的來電。{agent}在{time}打電話給您，來電事由：{reason}。",
        "zh-Hans": "已确认：这是{company}的来电。{agent}在{time}给您打电话，来电事由：{reason}。",
    },
    "offer_transfer": {
        "en": "To speak to {agent} again, press 1. Or hang up.",
        "zh-Hant": "要再和{agent}通話，請按 1。或直接掛斷。",
        "zh-Hans": "要再和{agent}通话，请按 1。或直接挂断。",
    },
    "transferring": {
        "en": "Putting you through to {agent}.",
        "zh-Hant": "正在為您轉接{agent}。",
        "zh-Hans": "正在为您转接{agent}。",
    },
    # A ticket issued without a number: the network cannot answer the phone question, so the
    # line cannot confirm it (spec/voice-line.md §2); the customer may ask for the team.
    "no_phone_check": {
        "en": "This call cannot be checked by phone.",
        "zh-Hant": "這通來電無法用電話查證。",
        "zh-Hans": "这通来电无法通过电话查证。",
    },
    "offer_team": {
        "en": "To speak to our team, press 1. Or hang up.",
        "zh-Hant": "要和我們的客服人員通話，請按 1。或直接掛斷。",
        "zh-Hans": "要和我们的客服人员通话，请按 1。或直接挂断。",
    },
    "transferring_team": {
        "en": "Putting you through to our team.",
        "zh-Hant": "正在為您轉接客服人員。",
        "zh-Hans": "正在为您转接客服人员。",
    },
    "no_phone_advice": {
        "en": "If in doubt, hang up, and call us on {number}, the number on your card or "
              "receipt. Goodbye.",
        "zh-Hant": "如有疑問，請掛斷，撥打我們的官方客服電話 {number}"
                   "（印在您的卡片或收據上）。再見。",
        "zh-Hans": "如有疑问，请挂断，拨打我们的官方客服电话 {number}"
                   "（印在您的卡片或收据上）。再见。",
    },
    "transferring_queue": {
        "en": "{agent} is on another call. Putting you through to the same team.",
        "zh-Hant": "{agent}正在通話中。正在為您轉接同一組的客服人員。",
        "zh-Hans": "{agent}正在通话中。正在为您转接同一组的客服人员。",
    },
    # The failure page, in speech: the same words for every failure.
    "failed": {
        "en": "We cannot confirm this call. Hang up now. Then call us on {number}, the number "
              "on your card or receipt, or call {hotline}. A caller who says this check is "
              "broken is lying.",
        "zh-Hant": "無法確認這通電話。請立即掛斷電話。然後撥打我們的官方客服電話 {number}"
                   "（印在您的卡片或收據上），或撥打 {hotline}。"
                   "如果來電者說這個查證系統壞了，他在說謊。",
        "zh-Hans": "无法确认这通电话。请立即挂断电话。然后拨打我们的官方客服电话 {number}"
                   "（印在您的卡片或收据上），或拨打 {hotline}。"
                   "如果来电者说这个查证系统坏了，他在说谎。",
    },
    # No calling number: the network cannot answer the phone question (spec/voice-line.md §3).
    "withheld": {
        "en": "We cannot see the number you are calling from. Hang up, and call us again from "
              "the phone we called, with your number shown.",
        "zh-Hant": "我們看不到您的來電號碼。請掛斷，再用我們打給您的那支電話，顯示號碼後重新撥打。",
        "zh-Hans": "我们看不到您的来电号码。请挂断，再用我们打给您的那部电话，显示号码后重新拨打。",
    },
    "too_many_calls": {
        "en": "Many calls came from this number in the last hour, so we cannot take more now. "
              "If someone says they are calling from {company}, hang up, and call us on "
              "{number}, the number on your card or receipt.",
        "zh-Hant": "這個號碼在一小時內打來太多次，現在無法再受理。如果有人說他是{company}的人員，"
                   "請掛斷，撥打我們的官方客服電話 {number}（印在您的卡片或收據上）。",
        "zh-Hans": "这个号码在一小时内打来太多次，现在无法再受理。如果有人说他是{company}的人员，"
                   "请挂断，拨打我们的官方客服电话 {number}（印在您的卡片或收据上）。",
    },
    "not_a_choice": {
        "en": "Sorry, that key is not one of the choices.",
        "zh-Hant": "抱歉，沒有這個選項。",
        "zh-Hans": "抱歉，没有这个选项。",
    },
    "goodbye": {
        "en": "We did not get an answer. If in doubt, hang up, and call us on {number}, the "
              "number on your card or receipt. Goodbye.",
        "zh-Hant": "沒有收到您的回答。如有疑問，請掛斷，撥打我們的官方客服電話 {number}"
                   "（印在您的卡片或收據上）。再見。",
        "zh-Hans": "没有收到您的回答。如有疑问，请挂断，拨打我们的官方客服电话 {number}"
                   "（印在您的卡片或收据上）。再见。",
    },
    "thanks": {
        "en": "Thank you. Goodbye.",
        "zh-Hant": "謝謝您。再見。",
        "zh-Hans": "谢谢您。再见。",
    },
}

KEYS = frozenset(_TEXTS)


def _fields(template: str) -> set[str]:
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(template) if name}


#: Prompts with nothing filled in per call: a company's recording may replace the speech.
STATIC_KEYS = frozenset(k for k, by_lang in _TEXTS.items()
                        if not any(_fields(t) for t in by_lang.values()))


def text(key: str, lang: str, **fields: str) -> str:
    """The sentence ``key`` in ``lang`` (English for a language without one), filled in."""
    by_lang = _TEXTS[key]
    return by_lang.get(lang, by_lang["en"]).format(**fields)


def spoken_digits(number: str, lang: str) -> str:
    """A phone number or a hotline said digit by digit, its groups apart: ``+886 2 2345 6789``
    → ``plus 8 8 6, 2, 2 3 4 5, 6 7 8 9`` (Chinese: ``加 8 8 6，2，…``)."""
    groups: list[str] = []
    for part in number.replace("-", " ").replace("(", " ").replace(")", " ").split():
        digits = [ch for ch in part if ch.isdigit()]
        if digits:
            groups.append(" ".join(digits))
    said = ("，" if lang.startswith("zh") else ", ").join(groups)
    if number.strip().startswith("+"):
        said = ("加 " if lang.startswith("zh") else "plus ") + said
    return said


def spoken_time(hour: int, minute: int, lang: str) -> str:
    """A time of day as a speech synthesiser reads it well: ``10:05``, ``10點05分``."""
    if lang == "zh-Hant":
        return f"{hour}點{minute:02d}分"
    if lang == "zh-Hans":
        return f"{hour}点{minute:02d}分"
    return f"{hour}:{minute:02d}"
