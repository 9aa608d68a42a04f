"""RTP for the SIP adapter: G.711 µ-law audio out, RFC 4733 telephone events in.

The SIP adapter (:mod:`callproof.voice.sip`) answers every call with PCMU/8000 (RTP payload type 0,
RFC 3551) for speech and telephone-event/8000 (RFC 4733) for the keypad. This module holds the
byte-level parts: the µ-law codec (ITU-T G.711, written out here because the standard library's
``audioop`` is deprecated and gone in Python 3.13), the RTP header (RFC 3550 §5.1), a paced sender
of 20 ms packets, and a receiver that turns telephone events into digits once each.

    >>> frames = pcmu_frames(read_wav_pcm16(path))      # 160-byte payloads, 20 ms each
    >>> sender = RtpSender(lambda b: transport.sendto(b, peer))  # random SSRC, seq., timestamp
    >>> await sender.play(frames)                        # paced in real time; marker on the first

Nothing here logs a digit: a keypress is a secret (part of a call code).
"""

from __future__ import annotations

import asyncio
import secrets
import struct
import time
import wave
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from callproof.errors import CallproofError

PCMU = 0  #: RTP payload type of G.711 µ-law at 8000 Hz (RFC 3551 §6, static)
CLOCK_RATE = 8000
FRAME_MS = 20
SAMPLES_PER_FRAME = CLOCK_RATE * FRAME_MS // 1000  # 160
PCMU_SILENCE = 0xFF  # µ-law code of 0
#: RFC 4733 §3.2: events 0–9 are the digits, 10 is *, 11 is #, 12–15 are A–D.
DTMF_EVENTS = "0123456789*#ABCD"

_BIAS = 0x84
_CLIP = 32635


class AudioFormatError(CallproofError):
    """A prompt file is not what the line plays: 8000 Hz, mono, 16-bit signed PCM WAV."""


# --- G.711 µ-law (ITU-T G.711 §3, the "segment + 4-bit mantissa" form) ----------------------

def _encode_sample(sample: int) -> int:
    # Negative samples by one's complement, as the ITU-T G.191 reference coder does.
    sign = 0x80 if sample < 0 else 0
    magnitude = min(~sample if sample < 0 else sample, _CLIP) + _BIAS
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not magnitude & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _decode_sample(code: int) -> int:
    code = ~code & 0xFF
    exponent = (code >> 4) & 0x07
    magnitude = ((((code & 0x0F) << 3) + _BIAS) << exponent) - _BIAS
    return -magnitude if code & 0x80 else magnitude


#: Every 16-bit sample's µ-law code, indexed by the sample's unsigned 16-bit pattern (64 KiB once).
_ENCODE = bytes(_encode_sample(s - 0x10000 if s >= 0x8000 else s) for s in range(0x10000))
_DECODE = tuple(_decode_sample(c) for c in range(256))


def ulaw_encode(pcm16le: bytes) -> bytes:
    """16-bit signed little-endian PCM → µ-law, one byte per sample."""
    if len(pcm16le) % 2:
        raise AudioFormatError("16-bit PCM must have an even number of bytes")
    return bytes(_ENCODE[s] for s in struct.unpack(f"<{len(pcm16le) // 2}H", pcm16le))


def ulaw_decode(ulaw: bytes) -> bytes:
    """µ-law → 16-bit signed little-endian PCM."""
    return struct.pack(f"<{len(ulaw)}h", *(_DECODE[c] for c in ulaw))


def read_wav_pcm16(path: Path) -> bytes:
    """The samples of an 8000 Hz mono 16-bit WAV file. Raises AudioFormatError otherwise."""
    try:
        with wave.open(str(path), "rb") as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (CLOCK_RATE, 1, 2):
                raise AudioFormatError(
                    f"{path.name}: {w.getframerate()} Hz, {w.getnchannels()} channel(s), "
                    f"{8 * w.getsampwidth()}-bit; the line plays 8000 Hz mono 16-bit PCM")
            return w.readframes(w.getnframes())
    except (wave.Error, EOFError) as e:
        raise AudioFormatError(f"{path.name} is not a PCM WAV file: {e}") from e


def pcmu_frames(pcm16le: bytes) -> list[bytes]:
    """µ-law payloads of 20 ms (160 bytes) each; the last one padded with silence."""
    ulaw = ulaw_encode(pcm16le)
    frames = [ulaw[i:i + SAMPLES_PER_FRAME] for i in range(0, len(ulaw), SAMPLES_PER_FRAME)]
    if frames and len(frames[-1]) < SAMPLES_PER_FRAME:
        frames[-1] = frames[-1].ljust(SAMPLES_PER_FRAME, bytes([PCMU_SILENCE]))
    return frames


# --- RTP packets (RFC 3550 §5.1) -------------------------------------------------------------

@dataclass(frozen=True)
class RtpPacket:
    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes

    def __repr__(self) -> str:  # the payload may be a keypress: never shown
        return (f"RtpPacket(pt={self.payload_type}, m={int(self.marker)}, seq={self.sequence}, "
                f"ts={self.timestamp}, {len(self.payload)} bytes)")

    def to_bytes(self) -> bytes:
        return struct.pack("!BBHII", 0x80, (0x80 if self.marker else 0) | self.payload_type,
                           self.sequence, self.timestamp, self.ssrc) + self.payload

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket | None:
        """The packet, or None when ``data`` is not an RTP version 2 packet (RTCP included)."""
        if len(data) < 12 or data[0] >> 6 != 2:
            return None
        first, second, sequence, timestamp, ssrc = struct.unpack_from("!BBHII", data)
        if 72 <= second & 0x7F <= 76:  # RTCP SR/RR/SDES/BYE/APP on a shared port (RFC 5761)
            return None
        offset = 12 + 4 * (first & 0x0F)
        if first & 0x10:  # header extension: 16-bit profile, 16-bit length in words
            if len(data) < offset + 4:
                return None
            offset += 4 + 4 * struct.unpack_from("!H", data, offset + 2)[0]
        end = len(data)
        if first & 0x20:  # padding: the last byte says how much
            end -= data[-1]
        if end < offset:
            return None
        return cls(second & 0x7F, bool(second & 0x80), sequence, timestamp, ssrc,
                   data[offset:end])


# --- sending ---------------------------------------------------------------------------------

class RtpSender:
    """One outgoing RTP stream (one SSRC) to the caller, paced at one packet each 20 ms.

    The sequence number goes up by one per packet; the timestamp follows the sampling clock,
    and across a pause (silence suppression between prompts) it jumps by the pause's length, with
    the marker bit on the first packet of the next talkspurt (RFC 3551 §4.1).
    """

    def __init__(self, send: Callable[[bytes], None], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._send = send
        self._clock = clock
        self.ssrc = secrets.randbits(32)
        self.sequence = secrets.randbits(16)
        self.timestamp = secrets.randbits(32)
        self._last_end: float | None = None  # when the last sent packet's audio ends
        self.packets_sent = 0

    async def play(self, frames: Iterable[bytes], stop: asyncio.Event | None = None) -> bool:
        """Send ``frames`` in real time; True when all were sent, False when ``stop`` was set."""
        loop_start = self._clock()
        if self._last_end is not None and loop_start > self._last_end:
            gap = int((loop_start - self._last_end) * CLOCK_RATE)
            self.timestamp = (self.timestamp + gap) & 0xFFFFFFFF
        marker = True
        for i, frame in enumerate(frames):
            if stop is not None and stop.is_set():
                return False
            due = loop_start + i * FRAME_MS / 1000
            delay = due - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            self._send(RtpPacket(PCMU, marker, self.sequence, self.timestamp, self.ssrc,
                                 frame).to_bytes())
            marker = False
            self.packets_sent += 1
            self.sequence = (self.sequence + 1) & 0xFFFF
            self.timestamp = (self.timestamp + SAMPLES_PER_FRAME) & 0xFFFFFFFF
            self._last_end = due + FRAME_MS / 1000
        if self._last_end is not None:  # wait out the last packet's 20 ms, as a phone hears it
            delay = self._last_end - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
        return True


# --- receiving telephone events (RFC 4733) -------------------------------------------------

class DtmfReceiver:
    """Turns a stream of RFC 4733 telephone-event packets into digits, each keypress once.

    A sender repeats an event's packets while the key is down and sends the final ("E") packet
    three times (RFC 4733 §2.5.1.4); every packet of one keypress carries the same RTP timestamp,
    so one keypress is one (SSRC, timestamp). A new timestamp is a new keypress.

    A finger keys at most ~10 digits a second (a tone and a pause of 40 ms or more each); keys
    coming faster than ``max_rate`` a second (after a burst of ``burst``) are a flood of forged
    packets and are dropped, so a sender cannot fill the call's buffers.
    """

    def __init__(self, event_payload_types: Sequence[int], on_digit: Callable[[str], None], *,
                 max_rate: float = 20.0, burst: int = 10,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._payload_types = frozenset(event_payload_types)
        self._on_digit = on_digit
        self._seen: list[tuple[int, int]] = []  # the last few keypresses, to drop repeats
        self._rate, self._burst, self._clock = max_rate, float(burst), clock
        self._allowance, self._checked = float(burst), clock()  # a token bucket
        self.accepted = 0  #: keys passed on (counts only: a key itself is never kept here)
        self.dropped = 0  #: keys dropped for coming too fast

    def feed(self, packet: RtpPacket) -> None:
        if packet.payload_type not in self._payload_types or len(packet.payload) < 4:
            return
        event = packet.payload[0]
        if event >= len(DTMF_EVENTS):  # tones and line events (RFC 4734): not a key
            return
        key = (packet.ssrc, packet.timestamp)
        if key in self._seen:
            return
        self._seen.append(key)
        del self._seen[:-16]
        now = self._clock()
        self._allowance = min(self._burst, self._allowance + (now - self._checked) * self._rate)
        self._checked = now
        if self._allowance < 1:
            self.dropped += 1
            return
        self._allowance -= 1
        self.accepted += 1
        self._on_digit(DTMF_EVENTS[event])
