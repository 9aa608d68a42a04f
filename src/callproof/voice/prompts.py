"""The voice line's audio: the company's recorded prompts where it supplied them, else speech
rendered once by espeak-ng (Debian's ``espeak-ng``) and cached — all as telephone audio, 8000 Hz
mono 16-bit signed PCM WAV (converted by SoX when it is installed, else in pure Python).

    >>> audio = PromptAudio(Path("callproof-data/voice-cache"), Path("callproof-data/prompts"))
    >>> audio.wav_for(Say("enter_code", "zh-Hant", "請輸入…"))   # a cached .wav file

A recording replaces only a *static* prompt (one with nothing filled in per call, see
:data:`callproof.voice.texts.STATIC_KEYS`), named ``<key>.<lang>.wav`` (``enter_code.en.wav``,
``enter_code.zh-Hant.wav``), in any WAV sample rate: it is converted once like the speech.

Only static prompts are cached, as ``<key>.<lang>.<hash>.wav`` (the hash of the voice and the
text, so a changed text renders anew): :meth:`PromptAudio.static_name` says whether a file name
is one of them, and nothing else is ever served. A sentence with names, times or reasons in it
("Mei Lin from Billing called you at 17:30 …") is rendered for the call into a private file
under ``<cache>/calls/``, which the adapter deletes once it has read it
(:meth:`PromptAudio.release`) and which is purged after :data:`CALL_AUDIO_SECONDS` anyway.
"""

from __future__ import annotations

import array
import hashlib
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from fractions import Fraction
from pathlib import Path

from callproof.errors import ConfigError
from callproof.voice.machine import Say
from callproof.voice.texts import STATIC_KEYS, VOICE_LANGUAGES, text

#: The telephone's audio: 8 kHz, mono, 16-bit.
RATE = 8000
#: espeak-ng's voice per language: Mandarin for both Chinese wordings; room for Cantonese.
VOICES = {"en": "en", "zh-Hant": "cmn", "zh-Hans": "cmn", "yue": "yue", "yue-Hant": "yue"}
#: Words a minute: a little slower than espeak-ng's 175, for people on a phone.
SPEED = 145
_RENDER_VERSION = "1"  # change to render every cached prompt anew
_TAPS = 8  # the low-pass filter's half width at the output rate, in its samples
#: Seconds a call's own sentence may stay on disk when its adapter did not release it.
CALL_AUDIO_SECONDS = 120
_CALLS = "calls"  # the folder, in the cache, of the sentences rendered for one call
_STATIC_NAME = re.compile(r"([a-z_]{1,40})\.(en|zh-Hant|zh-Hans)\.[0-9a-f]{24}\.wav")


class PromptAudio:
    """Prompt audio files for :class:`~callproof.voice.machine.Say` sentences."""

    def __init__(self, cache_dir: Path, recorded_dir: Path | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.recorded_dir = Path(recorded_dir) if recorded_dir else None

    def __repr__(self) -> str:
        return f"PromptAudio({str(self.cache_dir)!r})"

    def recorded(self, say: Say) -> Path | None:
        """The company's recording of this prompt, if it supplied one (static prompts only)."""
        if self.recorded_dir is None or say.key not in STATIC_KEYS:
            return None
        path = self.recorded_dir / f"{say.key}.{say.lang}.wav"
        return path if path.is_file() else None

    def is_static(self, say: Say) -> bool:
        """Whether ``say`` is a fixed prompt (cached and servable): a static key with its own
        text, the same for every call. Anything with names, times or reasons in it is not."""
        if say.key not in STATIC_KEYS:
            return False
        if self.recorded(say) is not None:
            return True
        try:
            return say.text == text(say.key, say.lang)
        except KeyError:  # pragma: no cover - a static key has a text in every language
            return False

    def name_for(self, say: Say) -> str:
        """The cached file's name for a static prompt: its key, language and a hash of the
        source and the text."""
        source = self.recorded(say)
        origin = f"recorded\x00{source.stat().st_mtime_ns}\x00{source}" if source else \
            f"espeak-ng\x00{VOICES.get(say.lang, 'en')}\x00{SPEED}"
        digest = hashlib.sha256(f"{_RENDER_VERSION}\x00{origin}\x00{say.text}".encode())
        return f"{say.key}.{say.lang}.{digest.hexdigest()[:24]}.wav"

    def static_name(self, name: str) -> Path | None:
        """The cached file of a fixed prompt named ``name`` (for serving it), or None when the
        name is not exactly today's name of a fixed prompt: no other file is ever served."""
        match = _STATIC_NAME.fullmatch(name)
        if match is None or match[1] not in STATIC_KEYS or match[2] not in VOICE_LANGUAGES:
            return None
        say = Say(match[1], match[2], text(match[1], match[2]))
        if self.name_for(say) != name:
            return None
        return self.wav_for(say)

    def wav_for(self, say: Say) -> Path:
        """The 8 kHz mono 16-bit WAV of ``say``. A fixed prompt is rendered (or converted) once
        and cached; any other sentence is rendered into a new private file under
        ``<cache>/calls/`` for this call only — release it (:meth:`release`) once read; it is
        purged after :data:`CALL_AUDIO_SECONDS` anyway. Raises :class:`ConfigError` when
        espeak-ng is missing or fails."""
        if not self.is_static(say):
            return self._for_call(say)
        path = self.cache_dir / self.name_for(say)
        if path.is_file():
            return path
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.cache_dir) as tmp:
            out = self._render(say, Path(tmp))
            os.replace(out, path)  # atomic: a concurrent render of the same text is the same
        return path

    def release(self, path: Path) -> None:
        """Delete a call's own sentence once the adapter has read it (a fixed prompt's cached
        file is left alone)."""
        path = Path(path)
        if path.parent == self.cache_dir / _CALLS:
            path.unlink(missing_ok=True)

    def purge(self, *, older_than: float = CALL_AUDIO_SECONDS) -> int:
        """Delete the calls' sentences older than ``older_than`` seconds; how many went."""
        calls, gone = self.cache_dir / _CALLS, 0
        if not calls.is_dir():
            return 0
        limit = time.time() - older_than
        for entry in calls.iterdir():
            try:
                if entry.stat().st_mtime < limit:
                    if entry.is_dir():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)
                    gone += 1
            except FileNotFoundError:  # another instance purged it first
                continue
        return gone

    def _for_call(self, say: Say) -> Path:
        calls = self.cache_dir / _CALLS
        calls.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.purge()
        with tempfile.TemporaryDirectory(dir=calls) as tmp:
            out = self._render(say, Path(tmp))
            os.chmod(out, 0o600)  # who called whom: readable by this service only
            fd, name = tempfile.mkstemp(suffix=".wav", dir=calls)  # a name of its own
            os.close(fd)
            os.replace(out, name)
        return Path(name)

    def _render(self, say: Say, tmp: Path) -> Path:
        source = self.recorded(say)
        raw = tmp / "raw.wav"
        if source is not None:
            shutil.copyfile(source, raw)
        else:
            _speak(say.text, VOICES.get(say.lang, "en"), raw)
        out = tmp / "out.wav"
        if not _sox(raw, out):
            rate, samples = _read_mono16(raw)
            _write(out, resample(samples, rate, RATE))
        return out


def _speak(text: str, voice: str, out: Path) -> None:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ConfigError("the voice line needs espeak-ng for its prompts (apt-get install "
                          "espeak-ng), or recorded prompts for every static prompt")
    try:
        # A fixed program and arguments; the text goes to its stdin.
        subprocess.run([exe, "-v", voice, "-s", str(SPEED), "-w", str(out), "--stdin"],  # noqa: S603
                       input=text.encode("utf-8"), check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        raise ConfigError(f"espeak-ng could not render a prompt ({voice})") from e


def _sox(raw: Path, out: Path) -> bool:
    """Convert with SoX (Debian's ``sox``) when it is installed: its resampler is ~50 times
    faster than :func:`resample` here, which matters for sentences rendered during a call.
    False when SoX is missing or fails (then the pure-Python path converts)."""
    exe = shutil.which("sox")
    if exe is None:
        return False
    try:
        subprocess.run([exe, "-q", str(raw), "-r", str(RATE), "-c", "1", "-b", "16",  # noqa: S603
                        "-e", "signed-integer", str(out)], check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with wave.open(str(out), "rb") as w:
            return (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, wave.Error, EOFError,
            OSError):
        return False


def _read_mono16(path: Path) -> tuple[int, array.array[int]]:
    """A WAV file's samples as 16-bit mono (channels averaged, 8-bit widened)."""
    try:
        with wave.open(str(path), "rb") as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as e:
        raise ConfigError(f"{path.name} is not a PCM WAV file") from e
    if width == 1:
        samples = array.array("h", ((b - 128) << 8 for b in frames))
    elif width == 2:
        samples = array.array("h")
        samples.frombytes(frames)
        if sys.byteorder == "big":
            samples.byteswap()
    else:
        raise ConfigError(f"{path.name}: only 8- or 16-bit PCM WAV files are supported")
    if channels > 1:
        samples = array.array("h", (sum(samples[i:i + channels]) // channels
                                    for i in range(0, len(samples), channels)))
    return rate, samples


def resample(samples: array.array[int], rate_in: int, rate_out: int) -> array.array[int]:
    """Band-limited resampling (a Hann-windowed sinc low-pass at 0.45 of the lower rate): the
    kernels repeat every few output samples, so they are built once per phase."""
    if rate_in == rate_out:
        return array.array("h", samples)
    step = Fraction(rate_in, rate_out)  # input samples per output sample
    cutoff = min(1.0, rate_out / rate_in) * 0.9  # of the input's Nyquist frequency
    half = max(_TAPS, int(_TAPS / min(1.0, rate_out / rate_in)))
    phases = step.denominator
    kernels: list[list[float]] = []
    for p in range(phases):
        frac = float(Fraction(p * step.numerator % phases, phases))
        taps = []
        for k in range(-half + 1, half + 1):
            x = k - frac
            sinc = cutoff if x == 0 else math.sin(math.pi * cutoff * x) / (math.pi * x)
            window = 0.5 + 0.5 * math.cos(math.pi * x / half)
            taps.append(sinc * window)
        total = sum(taps)
        kernels.append([t / total for t in taps])
    n_out = int(len(samples) * rate_out // rate_in)
    out = array.array("h", bytes(2 * n_out))
    last = len(samples) - 1
    for n in range(n_out):
        pos = n * step
        base = pos.numerator // pos.denominator
        kernel = kernels[n % phases]
        acc = 0.0
        start = base - half + 1
        if start >= 0 and base + half <= last:
            for i, t in enumerate(kernel):
                acc += t * samples[start + i]
        else:
            for i, t in enumerate(kernel):
                j = start + i
                if 0 <= j <= last:
                    acc += t * samples[j]
        out[n] = max(-32768, min(32767, int(round(acc))))
    return out


def _write(path: Path, samples: array.array[int]) -> None:
    data = array.array("h", samples)
    if sys.byteorder == "big":
        data.byteswap()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(data.tobytes())
