"""The languages callproof speaks to people, declared once: BCP 47 tags, English first.

Every page, check word, reason text, notice card and report comes in each of these.

    >>> LANGUAGES
    ('en', 'zh-Hant', 'zh-Hans')
"""

LANGUAGES = ("en", "zh-Hant", "zh-Hans")

#: Each language by its own name, as a language menu shows it (and as an agent is told which
#: language the customer's page is in).
NATIVE_NAMES = {"en": "English", "zh-Hant": "繁體中文", "zh-Hans": "简体中文"}
