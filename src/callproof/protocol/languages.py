"""The languages callproof speaks to people, declared once: BCP 47 tags, English first.

Every page, check word, reason text, notice card and report comes in each of these.

    >>> LANGUAGES
    ('en', 'zh-Hant', 'zh-Hans')
"""

LANGUAGES = ("en", "zh-Hant", "zh-Hans")
