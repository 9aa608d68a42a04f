"""Prompt audio: espeak-ng rendered once and cached as telephone audio, or the company's own
recording of a static prompt."""

from __future__ import annotations

import array
import math
import os
import shutil
import time
import wave
from pathlib import Path

import pytest

from callproof.voice import prompts
from callproof.voice.machine import Say
from callproof.voice.prompts import PromptAudio, resample
from callproof.voice.texts import STATIC_KEYS, VOICE_LANGUAGES, spoken_digits, text

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                reason="espeak-ng is not installed (apt-get install espeak-ng)")


def samples_of(path: Path) -> tuple[tuple[int, int, int], array.array[int]]:
    with wave.open(str(path)) as w:
        shape = (w.getframerate(), w.getnchannels(), w.getsampwidth())
        data = array.array("h")
        data.frombytes(w.readframes(w.getnframes()))
    return shape, data


def rms(data: array.array[int]) -> float:
    return math.sqrt(sum(s * s for s in data) / max(1, len(data)))


def test_speech_is_rendered_once_as_8khz_mono_16bit(tmp_path: Path) -> None:
    audio = PromptAudio(tmp_path / "cache")
    for lang in VOICE_LANGUAGES:
        say = Say("enter_code", lang, text("enter_code", lang))
        path = audio.wav_for(say)
        shape, data = samples_of(path)
        assert shape == (8000, 1, 2)
        assert len(data) > 3 * 8000 and rms(data) > 300  # seconds of speech, not silence
        stamp = path.stat().st_mtime_ns
        assert audio.wav_for(say) == path and path.stat().st_mtime_ns == stamp  # cached
    # The cache holds only the finished files of fixed prompts, named by key and language.
    assert sorted(p.name.split(".")[0] for p in (tmp_path / "cache").iterdir()) == \
        ["enter_code"] * 3


def test_a_calls_own_sentence_is_never_cached_and_is_released(tmp_path: Path) -> None:
    """"Mei Lin from Billing called you at 17:30 about …" says who called whom: it is rendered
    for the call into a private file, deleted once read (or after a while), never cached."""
    cache = tmp_path / "cache"
    audio = PromptAudio(cache)
    said = Say("verified", "en", "Yes. This is Example Shop. Mei Lin from Billing called you "
                                 "at 17:30, about: a payment for your order.")
    assert not audio.is_static(said)
    assert not audio.is_static(Say("enter_code", "en", "Something else."))  # a static key's
    assert audio.is_static(Say("enter_code", "en", text("enter_code", "en")))  # text only
    path = audio.wav_for(said)
    shape, data = samples_of(path)
    assert shape == (8000, 1, 2) and len(data) > 8000 and rms(data) > 300
    assert path.parent == cache / "calls" and (path.stat().st_mode & 0o077) == 0
    assert [p.name for p in cache.iterdir()] == ["calls"]  # nothing in the cache proper
    second = audio.wav_for(said)
    assert second != path  # a file per use, never shared between calls
    audio.release(path)
    assert not path.exists() and second.exists()
    # Left behind (the adapter died): purged after CALL_AUDIO_SECONDS, on the next render.
    old = time.time() - prompts.CALL_AUDIO_SECONDS - 5
    os.utime(second, (old, old))
    third = audio.wav_for(Say("failed", "en", "We cannot confirm this call. Call 165."))
    assert not second.exists() and third.exists()
    assert audio.static_name(third.name) is None  # and it is not a fixed prompt's name


def test_a_recording_replaces_a_static_prompt_only(tmp_path: Path) -> None:
    recorded = tmp_path / "prompts"
    recorded.mkdir()
    tone = array.array("h", (int(8000 * math.sin(2 * math.pi * 440 * n / 16000))
                             for n in range(16000)))
    with wave.open(str(recorded / "enter_code.zh-Hant.wav"), "wb") as w:  # 16 kHz stereo
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(array.array("h", (s for s in tone for _ in range(2))).tobytes())
    assert "enter_code" in STATIC_KEYS and "verified" not in STATIC_KEYS
    audio = PromptAudio(tmp_path / "cache", recorded)
    shape, data = samples_of(audio.wav_for(Say("enter_code", "zh-Hant", "請輸入…")))
    assert shape == (8000, 1, 2) and len(data) == 8000  # one second, converted
    assert 4000 < rms(data) < 7000  # the tone's level kept (8000 / √2)
    assert audio.recorded(Say("enter_code", "en", "Key in…")) is None  # none for English
    (recorded / "verified.en.wav").write_bytes((recorded / "enter_code.zh-Hant.wav").read_bytes())
    assert audio.recorded(Say("verified", "en", "Yes. Mei Lin …")) is None  # has names in it


def test_resampling_keeps_speech_band_and_drops_what_8khz_cannot_carry() -> None:
    def tone(freq: float, rate: int) -> array.array[int]:
        return array.array("h", (int(10000 * math.sin(2 * math.pi * freq * n / rate))
                                 for n in range(rate // 4)))

    kept = resample(tone(1000, 22050), 22050, 8000)
    dropped = resample(tone(6000, 22050), 22050, 8000)  # above 4 kHz: would alias
    assert abs(len(kept) - 2000) <= 1
    assert rms(kept[100:-100]) > 6000 and rms(dropped[100:-100]) < 1000


def test_numbers_are_spoken_digit_by_digit() -> None:
    assert spoken_digits("+886 2 1234 5678", "en") == "plus 8 8 6, 2, 1 2 3 4, 5 6 7 8"
    assert spoken_digits("165", "zh-Hant") == "1 6 5"
    assert spoken_digits("+886-2-1234-5678", "zh-Hans") == "加 8 8 6，2，1 2 3 4，5 6 7 8"


def test_without_sox_the_pure_python_path_converts(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prompts, "_sox", lambda raw, out: False)
    path = PromptAudio(tmp_path / "cache").wav_for(Say("thanks", "en", text("thanks", "en")))
    shape, data = samples_of(path)
    assert shape == (8000, 1, 2) and len(data) > 4000 and rms(data) > 300
