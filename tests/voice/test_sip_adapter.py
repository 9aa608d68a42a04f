"""The SIP adapter's wire behaviour (callproof.voice.sip / .rtp), driven by raw UDP on loopback:
what a SIP trunk and a phone see — the answers to each request, the SDP, the RTP stream, the
keypad's RFC 4733 events — and the G.711 µ-law codec against the standard's reference.
The whole call with a real phone (baresip) and the real check is test_sip_baresip.py."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import warnings
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callproof.voice import rtp
from callproof.voice.machine import Gather, Say, Turn
from callproof.voice.sip import SipLine, SipMessage, caller_number, parse_offer, refer_to_uri

# --- G.711 µ-law ------------------------------------------------------------------------------


def _pcm(*samples: int) -> bytes:
    return struct.pack(f"<{len(samples)}h", *samples)


@pytest.mark.parametrize(("sample", "code"), [
    (0, 0xFF), (-1, 0x7F), (32767, 0x80), (-32768, 0x00), (1000, 0xCE), (-1000, 0x4E),
    (8031, 0xA0), (8159, 0x9F), (-8159, 0x1F)], ids=str)
def test_ulaw_codes_of_reference_samples(sample: int, code: int) -> None:
    assert rtp.ulaw_encode(_pcm(sample)) == bytes([code])


def test_ulaw_decodes_every_code_to_the_g711_table_and_round_trips_within_a_step() -> None:
    decoded = struct.unpack("<256h", rtp.ulaw_decode(bytes(range(256))))
    assert decoded[0xFF] == 0 and decoded[0x80] == 32124 and decoded[0x00] == -32124
    for code in range(128):  # the two halves mirror each other
        assert decoded[code] == -decoded[code | 0x80]
    every = _pcm(*range(-32768, 32768, 7))
    back = struct.unpack(f"<{len(every) // 2}h", rtp.ulaw_decode(rtp.ulaw_encode(every)))
    for x, y in zip(struct.unpack(f"<{len(every) // 2}h", every), back, strict=True):
        assert abs(x - y) <= max(8, abs(x) // 16 + 132)  # half a step of x's segment, clipped


def test_ulaw_agrees_with_the_standard_library_where_it_is_still_there() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:
            pytest.skip("audioop is gone (Python 3.13+)")
    codes = bytes(range(256))
    assert rtp.ulaw_decode(codes) == audioop.ulaw2lin(codes, 2)
    positive = _pcm(*range(0, 32768))
    assert rtp.ulaw_encode(positive) == audioop.lin2ulaw(positive, 2)


def test_a_prompt_becomes_20ms_frames_padded_with_silence(tmp_path: Path) -> None:
    path = tmp_path / "p.wav"
    write_wav(path, 8000 // 50 * 3 + 10)
    frames = rtp.pcmu_frames(rtp.read_wav_pcm16(path))
    assert [len(f) for f in frames] == [160] * 4
    assert frames[-1][10:] == bytes([rtp.PCMU_SILENCE]) * 150
    wrong = tmp_path / "22k.wav"
    with wave.open(str(wrong), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(22050)
        w.writeframes(b"\0\0" * 100)
    with pytest.raises(rtp.AudioFormatError, match="8000 Hz mono"):
        rtp.read_wav_pcm16(wrong)


# --- RTP out, RFC 4733 in -------------------------------------------------------------------


def test_rtp_stream_is_paced_with_sequence_timestamp_and_marker_per_talkspurt() -> None:
    sent: list[tuple[float, rtp.RtpPacket]] = []

    def send(data: bytes) -> None:
        packet = rtp.RtpPacket.parse(data)
        assert packet is not None
        sent.append((time.monotonic(), packet))

    async def talk() -> None:
        sender = rtp.RtpSender(send)
        frame = bytes([0x80]) * 160
        await sender.play([frame] * 5)
        await asyncio.sleep(0.2)  # a pause between prompts
        await sender.play([frame] * 5)

    asyncio.run(talk())
    packets = [p for _, p in sent]
    assert len(packets) == 10 and {p.payload_type for p in packets} == {rtp.PCMU}
    assert len({p.ssrc for p in packets}) == 1
    assert [p.marker for p in packets] == [True, False, False, False, False] * 2
    for a, b in zip(packets, packets[1:], strict=False):
        assert b.sequence == (a.sequence + 1) & 0xFFFF
    steps = [(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in zip(packets, packets[1:],
                                                                     strict=False)]
    assert steps[:4] == steps[5:] == [160] * 4
    assert 160 + 0.2 * 8000 <= steps[4] <= 160 + 0.35 * 8000  # the pause, in samples
    first_spurt = sent[4][0] - sent[0][0]
    assert 0.07 <= first_spurt <= 0.2  # 4 × 20 ms: real time, not a burst


def _event(event: int, end: bool, duration: int, ts: int, ssrc: int = 7, seq: int = 1,
           pt: int = 101) -> rtp.RtpPacket:
    payload = struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration)
    return rtp.RtpPacket(pt, False, seq, ts, ssrc, payload)


def test_each_keypress_is_one_digit_whatever_the_retransmissions() -> None:
    got: list[str] = []
    dtmf = rtp.DtmfReceiver([101], got.append)
    for ts, event in ((1000, 4), (3000, 2), (5000, 11)):
        for duration in (160, 320, 480):
            dtmf.feed(_event(event, False, duration, ts))
        for _ in range(3):  # the end packet, sent three times (RFC 4733 §2.5.1.4)
            dtmf.feed(_event(event, True, 640, ts))
    dtmf.feed(_event(4, True, 640, 1000))  # a late copy of the first key
    dtmf.feed(_event(5, False, 160, 7000, pt=0))  # not the negotiated event type
    dtmf.feed(_event(20, False, 160, 9000))  # a tone event, not a key
    assert got == ["4", "2", "#"]
    assert "9" not in repr(_event(9, True, 640, 1000))  # a key is never shown


# --- SIP ------------------------------------------------------------------------------------


def test_the_calling_number_is_the_from_user_part_as_presented() -> None:
    assert caller_number('"Ann" <sip:+886912345678@trunk.example;user=phone>;tag=a') == \
        "+886912345678"
    assert caller_number("<sip:0912345678@10.0.0.1:5060>;tag=x") == "0912345678"
    assert caller_number("<tel:+886912345678>;tag=x") == "+886912345678"
    assert caller_number("sip:%2B886912345678@h;tag=1") == "+886912345678"
    assert caller_number('"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1') is None
    assert caller_number("<sip:trunk.example>;tag=1") is None


def test_refer_to_names_the_target_with_the_ticket() -> None:
    assert refer_to_uri("sip:mei@pbx.example", "t_1") == "sip:mei@pbx.example;callproof-ticket=t_1"
    assert refer_to_uri("+886223456789", "t_1") == "tel:+886223456789;callproof-ticket=t_1"


def test_an_offer_without_pcmu_or_with_srtp_is_not_taken() -> None:
    base = "v=0\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    assert parse_offer((base + "m=audio 4000 RTP/AVP 8\r\n").encode()) is None
    assert parse_offer((base + "m=audio 4000 RTP/SAVP 0\r\n").encode()) is None
    offer = parse_offer((base + "m=audio 4000 RTP/AVP 8 0 96\r\n"
                         "a=rtpmap:96 telephone-event/8000\r\n").encode())
    assert offer is not None and (offer.address, offer.port, offer.event_payload_type) == \
        ("127.0.0.1", 4000, 96)


def write_wav(path: Path, samples: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(_pcm(*(int(8000 * ((i // 20) % 2 * 2 - 1)) for i in range(samples))))


class ScriptedCall:
    """The voice check's interface, scripted: a prompt and a gather of two keys ("#" to end),
    then a one-key menu, then goodbye. (The real VoiceCall runs in test_sip_baresip.py.)"""

    def __init__(self, number: str | None, heard: list[Any]) -> None:
        self.heard = heard
        heard.append(("caller", number))

    def start(self) -> Turn:
        return Turn((Say("enter_code", "en", "Key two digits."),), Gather(2, timeout_seconds=3))

    def keys(self, digits: str) -> Turn:
        self.heard.append(("keys", digits))
        if len(self.heard) == 2:
            return Turn((Say("menu", "en", "Press 1 or 2."),), Gather(1, finish_on_key=""))
        return Turn((Say("thanks", "en", "Thank you."),), None, hangup=True)

    def silence(self) -> Turn:
        self.heard.append(("silence", ""))
        return Turn((), None, hangup=True)


class Prompts:
    """Like PromptAudio: the first prompt is static (one cached file), any other is rendered
    for the call into a file of its own, which the line must release once read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.made: list[Path] = []
        self.released: list[Path] = []

    def wav_for(self, say: Any) -> Path:
        if say.key == "enter_code":
            return self.path
        own = self.path.with_name(f"call-{len(self.made)}.wav")
        own.write_bytes(self.path.read_bytes())
        self.made.append(own)
        return own

    def release(self, path: Path) -> None:
        self.released.append(path)
        if path != self.path:
            path.unlink()


class Line:
    def __init__(self, tmp_path: Path, answer_delay: float = 0.05,
                 trunks: list[str] | None = None) -> None:
        write_wav(tmp_path / "prompt.wav", 8000 // 5)  # 200 ms
        self.heard: list[Any] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.prompts = Prompts(tmp_path / "prompt.wav")
        self.line = SipLine(lambda n: ScriptedCall(n, self.heard),
                            self.prompts, host="127.0.0.1", port=0,
                            answer_delay=answer_delay, max_calls=2, trunks=trunks)
        asyncio.run_coroutine_threadsafe(self.line.start(), self.loop).result(5)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.line.close(), self.loop).result(40)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def scripted_line(tmp_path: Path) -> Iterator[Line]:
    running = Line(tmp_path)
    yield running
    running.close()


class Phone:
    """A raw UDP SIP client on loopback, with its own RTP socket."""

    def __init__(self, port: int) -> None:
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind(("127.0.0.1", 0))
        self.sip.settimeout(6)
        self.media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.media.bind(("127.0.0.1", 0))
        self.media.settimeout(3)
        self.server = ("127.0.0.1", port)
        self.call_id = secrets.token_hex(6)
        self.tag = secrets.token_hex(4)

    def close(self) -> None:
        self.sip.close()
        self.media.close()

    def request(self, method: str, *, branch: str | None = None, cseq: int = 1,
                to_tag: str = "", body: str = "", extra: str = "",
                frm: str = "<sip:+886912345678@127.0.0.1>") -> str:
        branch = branch or "z9hG4bK" + secrets.token_hex(6)
        me = self.sip.getsockname()
        to = f"<sip:+886212345678@127.0.0.1:{self.server[1]}>" + (
            f";tag={to_tag}" if to_tag else "")
        text = (f"{method} sip:+886212345678@127.0.0.1:{self.server[1]} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{me[1]};branch={branch};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: {frm};tag={self.tag}\r\nTo: {to}\r\n"
                f"Call-ID: {self.call_id}\r\nCSeq: {cseq} {method}\r\n"
                f"Contact: <sip:phone@127.0.0.1:{me[1]}>\r\n{extra}"
                + ("Content-Type: application/sdp\r\n" if body else "")
                + f"Content-Length: {len(body)}\r\n\r\n{body}")
        self.sip.sendto(text.encode(), self.server)
        return branch

    def offer(self, formats: str = "0 101") -> str:
        port = self.media.getsockname()[1]
        return (f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                f"m=audio {port} RTP/AVP {formats}\r\na=rtpmap:0 PCMU/8000\r\n"
                f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n")

    def receive(self) -> SipMessage:
        data, _ = self.sip.recvfrom(65536)
        return SipMessage.parse(data)

    def until(self, status: int) -> SipMessage:
        while True:
            msg = self.receive()
            if msg.status == status:
                return msg


@pytest.fixture
def phone(scripted_line: Line) -> Iterator[Phone]:
    p = Phone(scripted_line.line.port)
    yield p
    p.close()


def test_options_answers_what_the_line_accepts(phone: Phone) -> None:
    phone.request("OPTIONS")
    ok = phone.receive()
    assert ok.status == 200 and "INVITE" in ok.get("allow") and "BYE" in ok.get("allow")
    assert ok.get("call-id") == phone.call_id and ok.get("cseq") == "1 OPTIONS"


def test_a_call_is_answered_streams_the_prompt_takes_keys_once_and_hangs_up(
        scripted_line: Line, phone: Phone) -> None:
    branch = phone.request("INVITE", body=phone.offer())
    assert phone.receive().status == 100
    ringing = phone.receive()
    assert ringing.status == 180 and ";tag=" in ringing.get("to")
    ok = phone.receive()
    assert ok.status == 200 and ok.get("content-type") == "application/sdp"
    port = phone.sip.getsockname()[1]  # RFC 3581: the Via says where the request came from
    assert ok.get("via").endswith(f"branch={branch};rport={port};received=127.0.0.1")
    to_tag = re.search(r";tag=([^;]+)", ok.get("to")).group(1)  # type: ignore[union-attr]
    assert to_tag in ringing.get("to")
    sdp = ok.body.decode()
    assert "m=audio " in sdp and " RTP/AVP 0 101" in sdp and "a=rtpmap:101 telephone-event/8000" \
        in sdp and "c=IN IP4 127.0.0.1" in sdp
    rtp_port = int(re.search(r"m=audio (\d+)", sdp).group(1))  # type: ignore[union-attr]
    # No ACK yet: the 200 is sent again (RFC 3261 §13.3.1.4), the same.
    again = phone.until(200)
    assert again.get("to") == ok.get("to")
    phone.request("ACK", cseq=1, to_tag=to_tag)
    # The prompt arrives as PCMU in 20 ms packets, the marker on the first.
    packets: list[rtp.RtpPacket] = []
    while len(packets) < 10:
        data, source = phone.media.recvfrom(2048)
        packet = rtp.RtpPacket.parse(data)
        assert packet is not None and source[1] == rtp_port
        packets.append(packet)
    assert packets[0].marker and not any(p.marker for p in packets[1:])
    assert {p.payload_type for p in packets} == {0} and {len(p.payload) for p in packets} == {160}
    # The keypad: "4" with its retransmissions, "2", "#" out of habit, then "7" for the menu.
    presses = [(4, 100), (4, 100), (4, 100), (2, 900), (2, 900), (11, 1700), (7, 2500)]
    for n, (event, ts) in enumerate(presses):
        end = n in (2, 4, 5, 6)
        packet = rtp.RtpPacket(101, n in (0, 3, 5, 6), 50 + n, ts, 99,
                               struct.pack("!BBH", event, (0x80 if end else 0) | 10, 400))
        phone.media.sendto(packet.to_bytes(), ("127.0.0.1", rtp_port))
        time.sleep(0.05)
    bye = phone.receive()
    while bye.method != "BYE":
        bye = phone.receive()
    assert bye.get("call-id") == phone.call_id and to_tag in bye.get("from")
    assert scripted_line.heard == [("caller", "+886912345678"), ("keys", "42"), ("keys", "7")]
    # The sentences rendered for this call were deleted once streamed; the static one stays.
    made = scripted_line.prompts.made
    assert made and set(made) <= set(scripted_line.prompts.released)
    assert not any(p.exists() for p in made) and scripted_line.prompts.path.exists()
    reply = (f"SIP/2.0 200 OK\r\nVia: {bye.get('via')}\r\nFrom: {bye.get('from')}\r\n"
             f"To: {bye.get('to')}\r\nCall-ID: {phone.call_id}\r\nCSeq: {bye.get('cseq')}\r\n"
             "Content-Length: 0\r\n\r\n")
    phone.sip.sendto(reply.encode(), phone.server)


def test_keys_from_another_address_than_the_callers_media_are_ignored(
        scripted_line: Line, phone: Phone) -> None:
    phone.request("INVITE", body=phone.offer().replace("c=IN IP4 127.0.0.1",
                                                       "c=IN IP4 127.0.0.2"))
    ok = phone.until(200)
    to_tag = re.search(r";tag=([^;]+)", ok.get("to")).group(1)  # type: ignore[union-attr]
    phone.request("ACK", to_tag=to_tag)
    rtp_port = int(re.search(r"m=audio (\d+)", ok.body.decode()).group(1))  # type: ignore[union-attr]
    packet = rtp.RtpPacket(101, True, 1, 100, 5, struct.pack("!BBH", 7, 0x80 | 10, 400))
    phone.media.sendto(packet.to_bytes(), ("127.0.0.1", rtp_port))  # from 127.0.0.1
    bye = phone.receive()
    while bye.method != "BYE":
        bye = phone.receive()
    assert ("keys", "7") not in scripted_line.heard and ("silence", "") in scripted_line.heard


def test_an_offer_without_pcmu_is_refused_488(phone: Phone) -> None:
    phone.request("INVITE", body=phone.offer("8"))
    assert phone.until(488).get("warning")


def test_cancel_while_ringing_ends_the_invite_with_487(tmp_path: Path) -> None:
    slow = Line(tmp_path, answer_delay=1.0)
    p = Phone(slow.line.port)
    try:
        branch = p.request("INVITE", body=p.offer())
        p.until(180)
        p.request("CANCEL", branch=branch)
        answers = {p.receive().status, p.receive().status}
        assert answers == {200, 487}
        p.request("INVITE", branch=branch, body=p.offer())  # the INVITE again: 487 again
        assert p.receive().status == 487
        assert slow.heard == []  # the call never started
    finally:
        p.close()
        slow.close()


def test_requests_for_no_call_are_481_and_garbage_is_dropped(phone: Phone) -> None:
    phone.request("BYE", to_tag="nope")
    assert phone.receive().status == 481
    phone.sip.sendto(b"\x16\x03\x01 not sip at all\r\n\r\n", phone.server)
    phone.request("REGISTER")
    assert phone.receive().status == 405  # the garbage got no answer; this did


def test_the_line_answers_at_most_max_calls_at_once(scripted_line: Line) -> None:
    phones = [Phone(scripted_line.line.port) for _ in range(3)]
    try:
        for p in phones:
            p.request("INVITE", body=p.offer())
        assert phones[0].until(200) and phones[1].until(200)
        assert phones[2].until(486).get("retry-after")
    finally:
        for p in phones:
            p.close()


# --- the command ----------------------------------------------------------------------------


def test_voice_sip_command_listens_on_loopback_only_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "CALLPROOF_DATA_DIR": str(tmp_path / "data")}
    exe = [sys.executable, "-m", "callproof"]
    subprocess.run([*exe, "init"], env=env, check=True, capture_output=True, timeout=60)
    refused = subprocess.run([*exe, "voice", "sip", "--listen", "0.0.0.0:5070"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "not a loopback address" in refused.stderr
    proc = subprocess.Popen([*exe, "voice", "sip", "--listen", "127.0.0.1:0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        port = int(re.search(r"udp:127\.0\.0\.1:(\d+)", ready).group(1))  # type: ignore[union-attr]
        p = Phone(port)
        try:
            p.request("OPTIONS")
            assert p.receive().status == 200
        finally:
            p.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err


# --- review findings (issue 15) -------------------------------------------------------------


def test_non_ascii_digits_are_refused_and_the_line_goes_on_answering(
        scripted_line: Line, phone: Phone, caplog: pytest.LogCaptureFixture) -> None:
    """"²".isdigit() is True but int("²") raises: such a packet must get an answer of refusal,
    leave no traceback, and the line must still answer the next call."""
    caplog.set_level("DEBUG")
    assert parse_offer(b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio \xc2\xb2000 RTP/AVP 0\r\n") is None
    phone.request("INVITE", body=phone.offer().replace("m=audio ", "m=audio \u00b2"))
    assert phone.receive().status == 488  # the offer names no port this line can read
    weird_format = Phone(scripted_line.line.port)
    try:  # a format "²" is not a payload type; PCMU is still offered: answered
        weird_format.request("INVITE", body=weird_format.offer("0 \u00b2 101"))
        assert weird_format.until(200).get("content-type") == "application/sdp"
    finally:
        weird_format.close()
    other = Phone(scripted_line.line.port)
    try:  # a CSeq or Content-Length of "²": not SIP this line reads (dropped, no traceback)
        other.sip.sendto(("OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;"
                          "branch=z9hG4bKa\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@c>\r\n"
                          "Call-ID: c1\r\nCSeq: \u00b2 OPTIONS\r\nContent-Length: \u00b2\r\n\r\n"
                          ).encode(), other.server)
        other.request("OPTIONS")
        assert other.receive().status == 200  # the line still answers
    finally:
        other.close()
    tracebacks = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()
                  or r.levelname in ("ERROR", "CRITICAL")]
    assert tracebacks == []


def test_a_request_whose_values_cannot_be_read_is_answered_400(
        scripted_line: Line, phone: Phone, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Any ValueError while handling a request (a value no check foresaw) is the caller's bad
    request: 400, no traceback, and the line answers the next INVITE."""
    from callproof.voice import sip

    real = sip.parse_offer

    def unreadable(body: bytes) -> sip.AudioOffer | None:
        if b"unreadable" in body:
            raise ValueError("a value this line cannot read")
        return real(body)

    monkeypatch.setattr(sip, "parse_offer", unreadable)
    phone.request("INVITE", body=phone.offer() + "a=x-unreadable\r\n")
    assert phone.receive().status == 400
    again = Phone(scripted_line.line.port)
    try:
        again.request("INVITE", body=again.offer())
        assert again.until(200).status == 200
    finally:
        again.close()
    assert not [r for r in caplog.records if r.exc_info or r.levelname == "ERROR"]


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files in /proc")
def test_cancel_at_once_leaves_no_rtp_socket_open_and_no_180_after_the_487(
        scripted_line: Line) -> None:
    """A CANCEL right behind the INVITE arrives while the line binds the call's RTP port: the
    port must still be closed, and the caller must not hear "ringing" after "terminated"."""
    p = Phone(scripted_line.line.port)
    p.sip.settimeout(0.5)
    before = _open_fds()
    rounds = 20
    try:
        for _ in range(rounds):
            p.call_id = secrets.token_hex(6)
            branch = p.request("INVITE", body=p.offer())
            p.request("CANCEL", branch=branch)
        statuses: dict[str, list[int]] = {}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                msg = p.receive()
            except TimeoutError:
                break
            if msg.get("cseq").endswith("INVITE"):
                statuses.setdefault(msg.get("call-id"), []).append(msg.status)
        assert len(statuses) == rounds
        for answers in statuses.values():
            # cancelled, answered before the CANCEL came, or busy (max_calls) behind such a call
            assert {487, 200, 486} & set(answers)
            if 487 in answers:
                assert 180 not in answers[answers.index(487):] and 200 not in answers
        time.sleep(0.3)
        cancelled = sum(487 in a for a in statuses.values())
        assert cancelled >= rounds // 2
        answered = rounds - cancelled
        assert _open_fds() <= before + answered  # one RTP socket per answered call at most
        if answered == 0:
            assert _open_fds() == before
    finally:
        p.close()


def test_keys_faster_than_a_finger_are_dropped() -> None:
    now = [100.0]
    got: list[str] = []
    dtmf = rtp.DtmfReceiver([101], got.append, clock=lambda: now[0])
    for n in range(500):  # 500 distinct keypresses in 0.5 s: a forged flood
        dtmf.feed(_event(n % 10, True, 640, 1000 + 800 * n))
        now[0] += 0.001
    assert 10 <= len(got) <= 10 + 20 and dtmf.dropped == 500 - len(got)
    now[0] += 1.0  # a second later a real keypress counts again
    dtmf.feed(_event(7, True, 640, 999_000))
    assert got[-1] == "7"
    keyed: list[str] = []
    human = rtp.DtmfReceiver([101], keyed.append, clock=lambda: now[0])
    for n, digit in enumerate("1234567890#"):  # ten a second, as baresip's sndcode: all kept
        human.feed(_event(int(digit) if digit != "#" else 11, True, 640, 5000 + 800 * n))
        now[0] += 0.1
    assert "".join(keyed) == "1234567890#"


def test_a_flood_of_keys_and_notifies_is_bounded_per_call(scripted_line: Line,
                                                          phone: Phone) -> None:
    phone.request("INVITE", body=phone.offer())
    ok = phone.until(200)
    to_tag = re.search(r";tag=([^;]+)", ok.get("to")).group(1)  # type: ignore[union-attr]
    rtp_port = int(re.search(r"m=audio (\d+)", ok.body.decode()).group(1))  # type: ignore[union-attr]
    dialog = next(iter(scripted_line.line._dialogs.values()))
    phone.request("ACK", to_tag=to_tag)
    started = time.monotonic()
    for n in range(300):  # distinct keypresses, as fast as the socket takes them
        packet = rtp.RtpPacket(101, True, n, 1000 + 800 * n, 5,
                               struct.pack("!BBH", 1, 0x80 | 10, 400))
        phone.media.sendto(packet.to_bytes(), ("127.0.0.1", rtp_port))
    time.sleep(0.3)  # the line reads them (loopback may lose some of a burst)
    elapsed = time.monotonic() - started
    assert dialog.dtmf.dropped > 0 and dialog.dtmf.accepted <= 10 + 20 * elapsed + 1
    # Keys pushed straight in (past the rate limit) stop at the per-call bound too.
    fut = asyncio.run_coroutine_threadsafe(_key_in_many(dialog, 100), scripted_line.loop)
    fut.result(5)
    assert len(dialog._keys) <= 32 and dialog.keys_dropped > 0
    frag = "SIP/2.0 100 Trying\r\n"
    for n in range(40):
        phone.request("NOTIFY", cseq=10 + n, to_tag=to_tag, body=frag,
                      extra="Event: refer\r\nSubscription-State: active\r\n")
        while phone.receive().get("cseq") != f"{10 + n} NOTIFY":
            pass
    assert dialog.notifications.qsize() <= 8


async def _key_in_many(dialog: Any, count: int) -> None:
    for _ in range(count):
        dialog._key_in("3")


def test_with_trunks_listed_other_peers_get_no_answer_and_are_logged_once_without_address(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="callproof.voice.sip")
    line = Line(tmp_path, trunks=["127.0.0.2", "192.0.2.0/28"])  # the phone is 127.0.0.1
    p = Phone(line.line.port)
    p.sip.settimeout(1)
    try:
        p.request("OPTIONS")
        p.request("INVITE", body=p.offer())
        with pytest.raises(TimeoutError):
            p.receive()
        assert line.heard == [] and line.line._dialogs == {}
        warned = [r.getMessage() for r in caplog.records if "unlisted peer" in r.getMessage()]
        assert len(warned) == 1
        assert not any("127.0.0.1" in r.getMessage() for r in caplog.records)
    finally:
        p.close()
        line.close()
    trunk = Line(tmp_path, trunks=["127.0.0.0/30"])
    q = Phone(trunk.line.port)
    try:
        q.request("OPTIONS")
        assert q.receive().status == 200  # a listed trunk is answered
    finally:
        q.close()
        trunk.close()


@pytest.mark.parametrize(("trunks", "heard"), [
    (["127.0.0.1"], "+886922222222"),  # the trunk asserts who called: P-Asserted-Identity
    (None, "+886911111111"),  # no trunk listed: anyone could send the header; From it is
], ids=["listed-trunk", "no-trunks"])
def test_p_asserted_identity_names_the_caller_only_from_a_listed_trunk(
        tmp_path: Path, trunks: list[str] | None, heard: str) -> None:
    line = Line(tmp_path, trunks=trunks)
    p = Phone(line.line.port)
    try:
        p.request("INVITE", body=p.offer(), frm="<sip:+886911111111@127.0.0.1>",
                  extra=('P-Asserted-Identity: "Trunk" <sip:+886922222222@trunk.example>, '
                         "<tel:+886922222222>\r\n"))
        ok = p.until(200)
        to_tag = re.search(r";tag=([^;]+)", ok.get("to")).group(1)  # type: ignore[union-attr]
        p.request("ACK", to_tag=to_tag)
        deadline = time.monotonic() + 5
        while not line.heard and time.monotonic() < deadline:
            time.sleep(0.02)
        assert line.heard[:1] == [("caller", heard)]
        p.request("BYE", cseq=2, to_tag=to_tag)  # the caller hangs up
        p.until(200)
    finally:
        p.close()
        line.close()


def test_voice_sip_command_exposed_to_a_trunk_needs_its_addresses(tmp_path: Path) -> None:
    env = {**os.environ, "CALLPROOF_DATA_DIR": str(tmp_path / "data")}
    exe = [sys.executable, "-m", "callproof", "voice", "sip"]
    missing = subprocess.run([*exe, "--listen", "0.0.0.0:0", "--exposed-to-trunk"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "needs --trunk" in missing.stderr
    wrong = subprocess.run([*exe, "--listen", "0.0.0.0:0", "--exposed-to-trunk", "--trunk",
                            "trunk.example"], env=env, capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "--trunk" in wrong.stderr
    subprocess.run([sys.executable, "-m", "callproof", "init"], env=env, check=True,
                   capture_output=True, timeout=60)
    proc = subprocess.Popen([*exe, "--listen", "127.0.0.1:0", "--trunk", "127.0.0.2"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(re.search(r"udp:127\.0\.0\.1:(\d+)",  # type: ignore[union-attr]
                             proc.stdout.readline()).group(1))
        p = Phone(port)  # from 127.0.0.1: not the trunk
        p.sip.settimeout(1)
        try:
            p.request("OPTIONS")
            p.request("OPTIONS")
            with pytest.raises(TimeoutError):
                p.receive()
        finally:
            p.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert err.count("an unlisted peer") == 1 and "127.0.0.1" not in err
