"""The SIP adapter's test rig: a real, independent SIP phone (Debian's baresip), an "agent line"
that takes the transferred call, and a way to hear what the phone heard.

    >>> with Baresip(tmp_path, number="+886912345678") as phone:
    ...     phone.dial("sip:+886223456789@127.0.0.1:5070")
    ...     phone.wait_event("CALL_ESTABLISHED")
    ...     phone.keys("1")
    ...     phone.wait_event("CALL_CLOSED")
    >>> speech_seconds(phone.heard())      # seconds of what baresip decoded that carry speech

baresip runs with its own config dir: g711 only, a silent WAV as its microphone (aufile),
aubridge as its loudspeaker, sndfile to record what it decodes, ctrl_tcp to be driven, no
registrar. It binds to loopback only, on ports the system picks.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import wave
import weakref
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BARESIP = shutil.which("baresip")
MODULES = Path("/usr/lib/baresip/modules")


class Baresip:
    """One baresip process: the customer's phone, calling from ``number``."""

    def __init__(self, workdir: Path, *, number: str) -> None:
        assert BARESIP is not None
        self.dir = workdir / f"baresip-{number.lstrip('+')}"
        self.dir.mkdir(parents=True)
        # What the phone hears goes to a short path: baresip 1.0's sndfile cuts the dump file's
        # name at about 128 characters, and under pytest-xdist's deeper temporary folders it lost
        # its "-dec.wav" ending (both directions then went to one file and nothing was "heard").
        self.records = Path(tempfile.mkdtemp(prefix="cp-heard-"))
        weakref.finalize(self, shutil.rmtree, self.records, True)
        # baresip listens for SIP on UDP and TCP at its port, and TLS at the next one.
        sip_port, ctrl_port = free_port(pair=True), free_port()
        silence = self.dir / "microphone.wav"
        with wave.open(str(silence), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(bytes(2 * 8000 * 60))
        (self.dir / "config").write_text("\n".join([
            "poll_method\tpoll",
            f"sip_listen\t127.0.0.1:{sip_port}",
            "net_interface\t127.0.0.1",
            f"audio_source\taufile,{silence}",
            "audio_player\taubridge,speaker",
            "audio_alert\taubridge,speaker",
            f"module_path\t{MODULES}",
            "module\tg711.so",
            "module\taufile.so",
            "module\taubridge.so",
            "module\tsndfile.so",
            "module\tctrl_tcp.so",
            "module_app\taccount.so",
            "module_app\tmenu.so",
            f"ctrl_tcp_listen\t127.0.0.1:{ctrl_port}",
            f"snd_path\t{self.records}",
            "", ]))
        # The customer's number as the account's user; regint=0: no registrar.
        (self.dir / "accounts").write_text(
            f"<sip:{number}@127.0.0.1>;regint=0;audio_codecs=PCMU\n")
        self.log_path = self.dir / "baresip.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen([BARESIP, "-f", str(self.dir), "-v", "-s"],  # noqa: S603
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=self.dir)
        self.events: list[dict[str, Any]] = []
        self.raw = b""
        self._lock = threading.Lock()
        try:
            self._wait_log(r"(baresip is ready)", 15)
            self._ctrl = socket.create_connection(("127.0.0.1", ctrl_port), timeout=5)
            self._ctrl.settimeout(None)  # the event reader waits as long as the call lasts
        except BaseException:
            self.proc.kill()
            self.proc.wait(5)
            self._log.close()
            raise
        self._reader = threading.Thread(target=self._read_events, daemon=True)
        self._reader.start()

    def __enter__(self) -> Baresip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def _wait_log(self, pattern: str, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            match = re.search(pattern, self.log())
            if match:
                return match.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"baresip did not log {pattern!r}:\n{self.log()[-3000:]}")

    # -- ctrl_tcp: JSON in netstrings, both ways --

    def command(self, command: str, params: str = "") -> None:
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        self._ctrl.sendall(str(len(body)).encode() + b":" + body + b",")

    def _read_events(self) -> None:
        buf = b""
        while True:
            try:
                chunk = self._ctrl.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            self.raw += chunk
            while b":" in buf:
                size, _, rest = buf.partition(b":")
                if not size.isdigit() or len(rest) < int(size) + 1:
                    break
                message, buf = rest[:int(size)], rest[int(size) + 1:]
                with suppress(ValueError):
                    decoded = json.loads(message)
                    if decoded.get("event"):
                        with self._lock:
                            self.events.append(decoded)

    def event_types(self, peer: str = "") -> list[str]:
        """The ctrl_tcp events' types so far (of calls whose peer URI contains ``peer``)."""
        with self._lock:
            return [e.get("type", "") for e in self.events if peer in e.get("peeruri", "")]

    def wait_event(self, kind: str, seconds: float = 30, *, peer: str = "") -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if kind in self.event_types(peer):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"baresip: no {kind} within {seconds} s; events "
                             f"{self.event_types()}\n{self.raw[-3000:]!r}")

    # -- what a customer does --

    def dial(self, uri: str) -> None:
        self.command("dial", uri)

    def keys(self, digits: str) -> None:
        """Key ``digits`` on the phone's keypad: RFC 4733 events, since the line offers them."""
        self.command("sndcode", digits)

    def close(self) -> None:
        if self.proc.poll() is None:
            with suppress(OSError):
                self.command("quit")
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        with suppress(OSError):
            self._ctrl.close()
        self._log.close()

    def heard(self) -> bytes:
        """16-bit PCM at 8000 Hz of everything the phone decoded (sndfile's dumps)."""
        pcm = b""
        for path in sorted(self.records.glob("*-dec.wav")):
            pcm += wav_samples(path)
        return pcm


def wav_samples(path: Path) -> bytes:
    """A WAV file's samples, also when the writer was stopped before it set the sizes."""
    data = path.read_bytes()
    at = data.find(b"data", 12)
    if at < 0:
        return b""
    size = struct.unpack_from("<I", data, at + 4)[0]
    body = data[at + 8:]
    return body[:size] if size else body[: len(body) // 2 * 2]


def speech_seconds(pcm: bytes, rate: int = 8000) -> float:
    """How many seconds of ``pcm`` (16-bit mono) are loud enough to be speech: 50 ms windows
    whose RMS is above -40 dBFS."""
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm[: len(pcm) // 2 * 2])
    window = rate // 20
    loud = 0
    for i in range(0, len(samples) - window + 1, window):
        chunk = samples[i:i + window]
        if math.sqrt(sum(s * s for s in chunk) / window) > 32768 * 0.01:
            loud += 1
    return loud / 20


def heard_prompt(heard: bytes, prompt: Path, *, at: float = 0.5) -> bool:
    """Whether the phone heard ``prompt`` (a WAV the line streamed): 100 ms of it from ``at``
    seconds in, found sample for sample in what the phone decoded. Both are compared as µ-law
    codes: decoders round the codes' levels differently, the codes survive."""
    from callproof.voice import rtp

    probe = rtp.ulaw_encode(rtp.read_wav_pcm16(prompt))[int(at * 8000):int(at * 8000) + 800]
    return len(probe) == 800 and probe in rtp.ulaw_encode(heard)


@dataclass
class Received:
    method: str
    uri: str
    headers: dict[str, str]
    raw: str


@dataclass
class AgentLine:
    """The agent's desk phone: a small UDP SIP endpoint on loopback that answers every INVITE
    (180, then 200 OK with an SDP answer), and records each request it is sent."""

    answer: int = 200
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def __enter__(self) -> AgentLine:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def invites(self) -> list[Received]:
        return [r for r in list(self.requests) if r.method == "INVITE"]

    def wait_invite(self, seconds: float = 20) -> Received:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.invites():
                return self.invites()[0]
            time.sleep(0.05)
        raise AssertionError("the agent line was not called")

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            text = data.decode("utf-8", "replace")
            head = text.split("\r\n\r\n", 1)[0].split("\r\n")
            parts = head[0].split(" ")
            if len(parts) != 3 or parts[2] != "SIP/2.0":
                continue
            headers: dict[str, str] = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers.setdefault(name.strip().lower(), value.strip())
            self.requests.append(Received(parts[0], parts[1], headers, text))
            if parts[0] == "INVITE":
                self._reply(head, addr, "100 Trying")
                if self.answer == 200:
                    sdp = ("v=0\r\no=agent 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                           "t=0 0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
                           "a=sendrecv\r\n")
                    self._reply(head, addr, "200 OK", sdp)
                else:
                    self._reply(head, addr, f"{self.answer} Busy Here")
            elif parts[0] in ("BYE", "OPTIONS", "CANCEL"):
                self._reply(head, addr, "200 OK")

    def _reply(self, head: list[str], addr: Any, status: str, sdp: str = "") -> None:
        keep = [h for h in head[1:] if h.split(":")[0].strip().lower()
                in ("via", "v", "from", "f", "call-id", "i", "cseq")]
        to = next(h for h in head[1:] if h.split(":")[0].strip().lower() in ("to", "t"))
        if ";tag=" not in to:
            to += ";tag=agent1"
        lines = [f"SIP/2.0 {status}", *keep, to,
                 f"Contact: <sip:agent@127.0.0.1:{self.port}>"]
        if sdp:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(sdp.encode())}")
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n" + sdp).encode(), addr)


def require_baresip() -> str:
    """The reason the baresip tests cannot run here, or '' when they can (mandatory in CI)."""
    if BARESIP is None or not (MODULES / "ctrl_tcp.so").exists():
        return "baresip is not installed (apt-get install baresip)"
    if shutil.which("espeak-ng") is None:
        return "espeak-ng is not installed (apt-get install espeak-ng)"
    return ""


def voice_required() -> bool:
    return os.environ.get("CALLPROOF_REQUIRE_VOICE") == "1"


def wait_until(predicate: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def free_port(*, pair: bool = False) -> int:
    """A loopback port free for TCP and UDP now (and the next one too, with ``pair``)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port >= 65535:
            continue
        try:
            for p in (port, port + 1) if pair else (port,):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    with socket.socket(socket.AF_INET, kind) as s:
                        s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise AssertionError("no free loopback port")
