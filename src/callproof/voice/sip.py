"""The voice line over SIP: a small user agent server that answers calls to the official number.

A SIP trunk or PBX sends each call to the official number here (UDP, RFC 3261 as far as a line
that answers needs): INVITE with an SDP offer → 100 Trying, 180 Ringing, 200 OK with an answer of
PCMU/8000 (payload 0) and telephone-event/8000 (RFC 4733); then ACK, and BYE or CANCEL; OPTIONS
answers keep-alive probes. Each call runs one :class:`~callproof.voice.machine.VoiceCall`: its
prompts are streamed as RTP (:mod:`callproof.voice.rtp`), the keypad comes back as RFC 4733
events, and a transfer is a REFER of the caller's leg to the agent's line (RFC 3515), the ticket
id in the Refer-To URI and in an ``X-Callproof-Ticket`` header.

    >>> serve(deployment, host="127.0.0.1", port=5070, cache_dir=data / "voice-cache")
    >>> # or, inside an event loop, with any factory of calls and any prompts:
    >>> line = SipLine(lambda number: VoiceCall(dep, caller_number=number, channel="sip"),
    ...                PromptAudio(cache), host="127.0.0.1", port=0)
    >>> await line.start(); line.port; ...; await line.close()

Why REFER and not a B2BUA that calls the agent and bridges the audio: the line then leaves the
conversation at once (no media relayed through it, no call of its own to keep up), the
customer's side — a trunk, a PBX, or the phone itself — places the call to the agent, and
baresip, PBXs and trunks follow it (tests/voice/test_sip_baresip.py). When the agent's side
refuses (the NOTIFY says e.g. 486), the line refers the customer to the team's queue.

Who calls is what the platform presents: from a listed trunk (``trunks``, ``callproof voice sip
--trunk``) its P-Asserted-Identity (RFC 3325), else the From header's user part
(spec/voice-line.md). With trunks listed, datagrams from any other peer are ignored; the line
should be reachable by the trunk only either way. Requests inside a call go back to the
address the INVITE came from, never to an address a Contact header names.
Nothing here logs a phone number, a keypress, a code or a client's address.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from callproof.voice import rtp

if TYPE_CHECKING:
    from pathlib import Path

    from callproof.deployment import Deployment

log = logging.getLogger("callproof.voice.sip")

T1 = 0.5  # RFC 3261 §17.1.1.1: the round-trip estimate
T2 = 4.0
MAX_DATAGRAM = 8192  # bigger SIP over UDP is not a call to this line (RFC 3261 §18.1.1: ~1300)
MAX_HEADERS = 64
MAX_REMEMBERED = 4096  # answers kept for retransmitted requests (RFC 3261 §17.2.2, Timer J)
MAX_CALL_SECONDS = 300.0  # a check is a minute or two; a stuck call is ended
MAX_KEYS_WAITING = 32  # keys pressed and not yet gathered (a code is 9 digits and "#")
MAX_NOTIFICATIONS = 8  # a transfer's NOTIFYs not yet read (RFC 3515: a handful per REFER)
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, NOTIFY"
USER_AGENT = "callproof-voice"
TICKET_HEADER = "X-Callproof-Ticket"

_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
            "l": "content-length", "c": "content-type", "k": "supported", "o": "event",
            "r": "refer-to", "b": "referred-by", "e": "content-encoding", "s": "subject"}


# --- the interface this adapter drives (callproof.voice.machine) ----------------------------

class _Say(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def lang(self) -> str: ...
    @property
    def text(self) -> str: ...


class _Gather(Protocol):
    @property
    def max_digits(self) -> int: ...
    @property
    def finish_on_key(self) -> str: ...
    @property
    def timeout_seconds(self) -> int: ...


class _Transfer(Protocol):
    @property
    def target(self) -> str: ...
    @property
    def queue(self) -> str | None: ...
    @property
    def ticket_id(self) -> str: ...


class _Turn(Protocol):
    @property
    def say(self) -> tuple[_Say, ...]: ...
    @property
    def gather(self) -> _Gather | None: ...
    @property
    def transfer(self) -> _Transfer | None: ...
    @property
    def hangup(self) -> bool: ...


class _Call(Protocol):
    def start(self) -> _Turn: ...
    def keys(self, digits: str) -> _Turn: ...
    def silence(self) -> _Turn: ...


class _Prompts(Protocol):
    def wav_for(self, say: Any) -> Path: ...
    def release(self, path: Path) -> None: ...  # a call's own sentence, once read


#: Makes one call's state machine from the calling number (None: withheld).
CallFactory = Callable[[str | None], _Call]


# --- messages (RFC 3261 §7) -------------------------------------------------------------------

class SipParseError(ValueError):
    """A datagram that is not a SIP message this line can read."""


@dataclass
class SipMessage:
    """A request (``method``, ``uri``) or a response (``status``, ``reason``)."""

    method: str = ""
    uri: str = ""
    status: int = 0
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)  # (lower-case name, value)
    body: bytes = b""

    def __repr__(self) -> str:  # headers name the caller: never shown
        what = self.method or f"{self.status} {self.reason}"
        return f"SipMessage({what}, {len(self.headers)} headers, {len(self.body)} body bytes)"

    @property
    def is_request(self) -> bool:
        return bool(self.method)

    def get(self, name: str, default: str = "") -> str:
        name = name.lower()
        return next((v for n, v in self.headers if n == name), default)

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self.headers if n == name]

    @property
    def cseq(self) -> tuple[int, str]:
        number, _, method = self.get("cseq").strip().partition(" ")
        if not _is_digits(number) or len(number) > 10:
            raise SipParseError("bad CSeq")
        return int(number), method.strip().upper()

    @property
    def branch(self) -> str:
        vias = self.get_all("via")
        return _param(vias[0], "branch") or "" if vias else ""

    def to_bytes(self) -> bytes:
        start = (f"{self.method} {self.uri} SIP/2.0" if self.method
                 else f"SIP/2.0 {self.status} {self.reason}")
        lines = [start]
        lines += [f"{_canonical(n)}: {v}" for n, v in self.headers if n != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body

    @classmethod
    def parse(cls, data: bytes) -> SipMessage:
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep:
            head, sep, body = data.partition(b"\n\n")
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SipParseError("not UTF-8") from e
        lines = text.replace("\r\n", "\n").split("\n")
        start, msg = lines[0].strip(), cls()
        if start.startswith("SIP/2.0 "):
            code, _, msg.reason = start[8:].partition(" ")
            if not (_is_digits(code) and len(code) == 3):
                raise SipParseError("bad status line")
            msg.status = int(code)
        else:
            parts = start.split(" ")
            if len(parts) != 3 or parts[2] != "SIP/2.0" or not re.fullmatch(r"[A-Z]+", parts[0]):
                raise SipParseError("bad request line")
            msg.method, msg.uri = parts[0], parts[1]
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and msg.headers:  # folded continuation (§7.3.1)
                name, value = msg.headers[-1]
                msg.headers[-1] = (name, f"{value} {line.strip()}")
                continue
            name, colon, value = line.partition(":")
            if not colon or not name.strip():
                raise SipParseError("bad header line")
            name = name.strip().lower()
            name = _COMPACT.get(name, name)
            values = _split_commas(value) if name in ("via", "route", "record-route") \
                else [value.strip()]
            msg.headers += [(name, v) for v in values]
            if len(msg.headers) > MAX_HEADERS:
                raise SipParseError("too many headers")
        length = msg.get("content-length")
        if length:
            if not _is_digits(length) or int(length) > len(body):
                raise SipParseError("bad Content-Length")
            body = body[:int(length)]
        msg.body = body
        for required in ("via", "from", "to", "call-id", "cseq"):
            if not msg.get(required):
                raise SipParseError(f"no {required} header")
        msg.cseq  # noqa: B018 - validates
        return msg


def _is_digits(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also takes "²" or "٣", which ``int`` refuses or
    reads as another number."""
    return text.isascii() and text.isdigit()


def _canonical(name: str) -> str:
    special = {"call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate",
               "x-callproof-ticket": TICKET_HEADER}
    return special.get(name) or "-".join(p.capitalize() for p in name.split("-"))


def _split_commas(value: str) -> list[str]:
    out, depth, quoted, cur = [], 0, False, ""
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth -= 1
        elif ch == "," and not quoted and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _param(header: str, name: str) -> str | None:
    """A header parameter's value (after the URI's closing '>', if any)."""
    tail = header.rsplit(">", 1)[-1] if ">" in header else header
    for part in tail.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == name:
            return value.strip()
    return None


def _uri_of(header: str) -> str:
    match = re.search(r"<([^>]*)>", header)
    return match.group(1) if match else header.split(";")[0].strip()


def caller_number(from_header: str) -> str | None:
    """The user part of the From URI, as the platform presents the calling number; None when
    the number is withheld (anonymous) or the URI has no user part."""
    uri = _uri_of(from_header)
    scheme, _, rest = uri.partition(":")
    if scheme.lower() == "tel":
        user = rest.split(";")[0]
    elif scheme.lower() in ("sip", "sips") and "@" in rest:
        user = rest.split("@", 1)[0].split(";")[0].split(":")[0]
    else:
        return None
    user = re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), user)
    if not user or user.lower() in ("anonymous", "unknown", "restricted", "unavailable"):
        return None
    return user


# --- SDP (RFC 4566 / RFC 3264 offer-answer) --------------------------------------------------

@dataclass(frozen=True)
class AudioOffer:
    address: str
    port: int
    event_payload_type: int | None


def parse_offer(body: bytes) -> AudioOffer | None:
    """The caller's audio address and telephone-event payload type, or None when the offer has
    no plain RTP audio stream with PCMU."""
    session_addr, media_addr, port, formats, in_audio = None, None, 0, [], False
    rtpmap: dict[int, str] = {}
    for raw in body.decode("utf-8", "replace").splitlines():
        kind, _, value = raw.strip().partition("=")
        if kind == "m":
            in_audio = False
            parts = value.split()
            if len(parts) >= 4 and parts[0] == "audio" and parts[2] == "RTP/AVP" and not port:
                in_audio, port = True, int(parts[1]) if _is_digits(parts[1]) else 0
                formats = [int(p) for p in parts[3:] if _is_digits(p)]
        elif kind == "c":
            parts = value.split()
            addr = parts[2].split("/")[0] if len(parts) >= 3 else None
            if in_audio:
                media_addr = addr
            elif not port:
                session_addr = addr
        elif kind == "a" and in_audio and value.startswith("rtpmap:"):
            pt, _, encoding = value[7:].partition(" ")
            if _is_digits(pt):
                rtpmap[int(pt)] = encoding.strip().lower()
    address = media_addr or session_addr
    if not port or address is None or not 0 < port < 65536:
        return None
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return None
    if rtp.PCMU not in formats:
        return None
    event = next((pt for pt in formats if rtpmap.get(pt, "").startswith("telephone-event/8000")),
                 None)
    return AudioOffer(address, port, event)


def sdp_answer(host: str, port: int, event_pt: int | None, session_id: int) -> bytes:
    family = "IP6" if ":" in host else "IP4"
    formats = f"{rtp.PCMU}" + (f" {event_pt}" if event_pt is not None else "")
    lines = ["v=0", f"o=callproof {session_id} {session_id} IN {family} {host}", "s=callproof",
             f"c=IN {family} {host}", "t=0 0", f"m=audio {port} RTP/AVP {formats}",
             "a=rtpmap:0 PCMU/8000"]
    if event_pt is not None:
        lines += [f"a=rtpmap:{event_pt} telephone-event/8000", f"a=fmtp:{event_pt} 0-15"]
    lines += ["a=ptime:20", "a=sendrecv"]
    return ("\r\n".join(lines) + "\r\n").encode()


# --- the line -------------------------------------------------------------------------------

def _token() -> str:
    return secrets.token_hex(8)


class _RtpProtocol(asyncio.DatagramProtocol):
    def __init__(self, on_packet: Callable[[bytes, tuple[Any, ...]], None]) -> None:
        self.on_packet = on_packet

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.on_packet(data, addr)


class _SipProtocol(asyncio.DatagramProtocol):
    def __init__(self, line: SipLine) -> None:
        self.line = line

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.line.datagram(data, addr)


class SipLine:
    """The SIP user agent server of the voice line: one UDP socket, one task per call.

    ``calls`` makes a call's state machine from the calling number; ``prompts`` gives each
    ``Say`` its WAV file. ``max_calls`` bounds the calls at once (more are answered 486 Busy Here).
    """

    def __init__(self, calls: CallFactory, prompts: _Prompts, *, host: str, port: int,
                 max_calls: int = 32, answer_delay: float = 0.2,
                 trunks: Iterable[str] | None = None) -> None:
        self.calls = calls
        #: The trunk's (or PBX's) addresses or networks; when given, every other peer is
        #: ignored and the trunk's P-Asserted-Identity names the caller. ValueError if one is
        #: not an IP address or network.
        self.trunks = parse_trunks(trunks) if trunks else None
        self.unlisted_dropped = 0  #: datagrams ignored because their peer is not a trunk
        self.prompts = prompts
        self.host = host
        self.port = port
        self.max_calls = max_calls
        self.answer_delay = answer_delay
        self.transport: asyncio.DatagramTransport | None = None
        self._dialogs: dict[str, _Dialog] = {}  # by Call-ID
        self._responses: dict[tuple[str, str], tuple[bytes, float]] = {}  # (branch, method)
        self._pending: dict[str, asyncio.Future[SipMessage]] = {}  # our requests, by branch
        self._tasks: set[asyncio.Task[None]] = set()
        self._counter = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _SipProtocol(self), local_addr=(self.host, self.port))
        self.transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    async def close(self) -> None:
        for dialog in list(self._dialogs.values()):
            await dialog.end(send_bye=True)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:  # let them unwind (close their RTP sockets) before the loop goes
            await asyncio.wait(tasks, timeout=5)
        if self.transport is not None:
            self.transport.close()

    # -- the wire --

    def send(self, msg: SipMessage, addr: tuple[Any, ...]) -> bytes:
        data = msg.to_bytes()
        if self.transport is not None:
            self.transport.sendto(data, addr)
        return data

    def is_trunk(self, addr: tuple[Any, ...]) -> bool:
        """Whether ``addr`` is one of the listed trunks (False when none are listed)."""
        return self.trunks is not None and _in_networks(addr[0], self.trunks)

    def datagram(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if self.trunks is not None and not self.is_trunk(addr):
            if not self.unlisted_dropped:  # once: a scan would otherwise flood the log
                log.warning("sip: ignoring datagrams from an unlisted peer (not a --trunk)")
            self.unlisted_dropped += 1
            return
        if len(data) > MAX_DATAGRAM or data.strip() == b"":  # keep-alive CRLFs, oversize
            return
        try:
            msg = SipMessage.parse(data)
        except (SipParseError, ValueError):
            log.debug("sip: dropped a datagram that is not a SIP message")
            return
        if not msg.is_request:
            future = self._pending.get(msg.branch)
            if future is not None and not future.done() and msg.status >= 200:
                future.set_result(msg)
            return
        try:
            self._request(msg, addr)
        except ValueError:  # SipParseError, or a value this line cannot read: the caller's error
            log.debug("sip: answered a request it cannot read with 400")
            self._reply(msg, addr, 400, "Bad Request", remember=False)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _reply(self, req: SipMessage, addr: tuple[Any, ...], status: int, reason: str, *,
               to_tag: str | None = None, headers: list[tuple[str, str]] | None = None,
               body: bytes = b"", remember: bool = True) -> bytes:
        to = req.get("to")
        if to_tag and _param(to, "tag") is None:
            to = f"{to};tag={to_tag}"
        vias = req.get_all("via")
        if vias and re.search(r";\s*rport\s*(;|$)", vias[0]):  # RFC 3581: where it came from
            vias[0] = re.sub(r";\s*rport\s*(?=;|$)", f";rport={addr[1]};received={addr[0]}",
                             vias[0], count=1)
        resp = SipMessage(status=status, reason=reason, body=body, headers=[
            *[("via", v) for v in vias], ("from", req.get("from")), ("to", to),
            ("call-id", req.get("call-id")), ("cseq", req.get("cseq")),
            ("server", USER_AGENT), *(headers or [])])
        data = self.send(resp, addr)
        if remember and req.method != "INVITE":
            now = time.monotonic()
            if len(self._responses) >= MAX_REMEMBERED:
                self._responses = {k: v for k, v in self._responses.items() if v[1] > now}
                while len(self._responses) >= MAX_REMEMBERED:  # a flood: forget the oldest
                    del self._responses[next(iter(self._responses))]
            self._responses[(req.branch, req.method)] = (data, now + 64 * T1)
        return data

    # -- requests --

    def _request(self, req: SipMessage, addr: tuple[Any, ...]) -> None:
        cached = self._responses.get((req.branch, req.method))
        if cached is not None and cached[1] > time.monotonic() and req.method != "ACK":
            # A retransmission (§17.2.2): the same answer again.
            if self.transport is not None:
                self.transport.sendto(cached[0], addr)
            return
        dialog = self._dialogs.get(req.get("call-id"))
        method = req.method
        if method == "INVITE":
            if dialog is not None:
                dialog.invite(req, addr)
            elif _param(req.get("to"), "tag") is not None:
                self._reply(req, addr, 481, "Call/Transaction Does Not Exist")
            else:
                self._new_call(req, addr)
        elif method == "ACK":
            if dialog is not None:
                dialog.ack(req)
        elif method == "CANCEL":
            if dialog is not None and dialog.invite_branch == req.branch:
                self._reply(req, addr, 200, "OK")
                dialog.cancel()
            else:
                self._reply(req, addr, 481, "Call/Transaction Does Not Exist")
        elif method == "BYE":
            if dialog is not None and dialog.matches(req):
                self._reply(req, addr, 200, "OK", to_tag=dialog.local_tag)
                self._spawn(dialog.end(send_bye=False))
            else:
                self._reply(req, addr, 481, "Call/Transaction Does Not Exist")
        elif method == "OPTIONS":
            self._reply(req, addr, 200, "OK", to_tag=_token(), headers=[
                ("allow", ALLOW), ("accept", "application/sdp"), ("supported", "")])
        elif method == "NOTIFY":
            if dialog is not None and dialog.matches(req):
                self._reply(req, addr, 200, "OK", to_tag=dialog.local_tag)
                dialog.notify(req)
            else:
                self._reply(req, addr, 481, "Subscription Does Not Exist")
        else:
            self._reply(req, addr, 405, "Method Not Allowed", headers=[("allow", ALLOW)])

    def _new_call(self, req: SipMessage, addr: tuple[Any, ...]) -> None:
        if req.get("content-type").split(";")[0].strip().lower() != "application/sdp" \
                or (offer := parse_offer(req.body)) is None:
            self._reply(req, addr, 488, "Not Acceptable Here", headers=[
                ("warning", '304 callproof "PCMU/8000 over RTP/AVP is required"')],
                remember=False)
            return
        if len(self._dialogs) >= self.max_calls:
            self._reply(req, addr, 486, "Busy Here", headers=[("retry-after", "30")],
                        remember=False)
            return
        self._counter += 1
        dialog = _Dialog(self, req, addr, offer, f"call-{self._counter}")
        self._dialogs[dialog.call_id] = dialog
        self._spawn(dialog.answer())

    def forget(self, dialog: _Dialog) -> None:
        self._dialogs.pop(dialog.call_id, None)

    async def request(self, req: SipMessage, addr: tuple[Any, ...]) -> SipMessage | None:
        """Send a non-INVITE request with UDP retransmissions (Timer E, §17.1.2.2); the final
        response, or None on timeout (Timer F)."""
        future: asyncio.Future[SipMessage] = asyncio.get_running_loop().create_future()
        self._pending[req.branch] = future
        data, interval, deadline = self.send(req, addr), T1, time.monotonic() + 64 * T1
        try:
            while time.monotonic() < deadline:
                try:
                    return await asyncio.wait_for(asyncio.shield(future), interval)
                except TimeoutError:
                    if self.transport is not None:
                        self.transport.sendto(data, addr)
                    interval = min(2 * interval, T2)
            return None
        finally:
            self._pending.pop(req.branch, None)


class _Dialog:
    """One call: the INVITE server transaction, the dialog (RFC 3261 §12) and the media."""

    def __init__(self, line: SipLine, invite: SipMessage, addr: tuple[Any, ...],
                 offer: AudioOffer, name: str) -> None:
        self.line, self.invite_req, self.addr = line, invite, addr
        self.offer, self.name = offer, name
        self.session_id = secrets.randbelow(1 << 31)
        self.call_id = invite.get("call-id")
        self.invite_branch = invite.branch
        self.local_tag = _token()
        self.remote_tag = _param(invite.get("from"), "tag") or ""
        self.remote_uri = invite.get("from")
        self.local_uri = invite.get("to")
        self.remote_target = _uri_of(invite.get("contact")) or _uri_of(invite.get("from"))
        self.route = list(reversed(invite.get_all("record-route")))
        self.local_cseq = secrets.randbelow(1 << 16) + 1
        self.last_response = b""
        self.final_sent = False
        self.confirmed = asyncio.Event()
        self.ended = False
        self.rtp_transport: asyncio.DatagramTransport | None = None
        self._keys: collections.deque[str] = collections.deque()  # keyed, not yet gathered
        self.keys_dropped = 0
        self._key_pressed = asyncio.Event()
        self._swallow: tuple[str, float] | None = None
        self.notifications: asyncio.Queue[SipMessage] = asyncio.Queue(MAX_NOTIFICATIONS)
        self.sender: rtp.RtpSender | None = None
        self.task: asyncio.Task[None] | None = None
        event_pts = [offer.event_payload_type] if offer.event_payload_type is not None else []
        self.dtmf = rtp.DtmfReceiver(event_pts, self._key_in)
        self.started = time.monotonic()

    def matches(self, req: SipMessage) -> bool:
        return _param(req.get("to"), "tag") == self.local_tag

    # -- the INVITE server transaction (§17.2.1) and the 2xx retransmissions (§13.3.1.4) --

    def _respond(self, status: int, reason: str, **kw: Any) -> None:
        self.last_response = self.line._reply(self.invite_req, self.addr, status, reason,
                                              to_tag=self.local_tag, **kw)

    def invite(self, req: SipMessage, addr: tuple[Any, ...]) -> None:
        if req.branch == self.invite_branch:  # the INVITE again: the last response again
            if self.last_response and self.line.transport is not None:
                self.line.transport.sendto(self.last_response, addr)
            return
        if not self.matches(req):
            self.line._reply(req, addr, 482, "Loop Detected")
            return
        # A re-INVITE (session refresh, hold): the same answer; the media goes on unchanged.
        self.line._reply(req, addr, 200, "OK", to_tag=self.local_tag, body=self._answer(),
                         headers=self._answer_headers(), remember=False)

    def _answer_headers(self) -> list[tuple[str, str]]:
        host = f"[{self.line.host}]" if ":" in self.line.host else self.line.host
        return [("contact", f"<sip:{host}:{self.line.port}>"), ("allow", ALLOW),
                ("content-type", "application/sdp")]

    def _answer(self) -> bytes:
        port = self.rtp_transport.get_extra_info("sockname")[1] if self.rtp_transport else 0
        return sdp_answer(self.line.host, port, self.offer.event_payload_type, self.session_id)

    async def answer(self) -> None:
        """The INVITE's answer, then the call. The caller may CANCEL (or the line close) at any
        await: after each one ``ended`` is checked, and an ended call's RTP socket is closed
        here, whenever it was bound (a CANCEL during the bind found none to close)."""
        try:
            await self._answer_and_converse()
        finally:
            if self.ended:
                self._close_media()

    async def _answer_and_converse(self) -> None:
        self._respond(100, "Trying")
        loop = asyncio.get_running_loop()
        try:
            self.rtp_transport, _ = await _bind_rtp(loop, self.line.host, self._rtp_in)
        except OSError:
            log.warning("sip: %s: no RTP port free", self.name)
            if not self.ended:
                self._respond(503, "Service Unavailable")
                self.final_sent = True
                self.ended = True
                self.line.forget(self)
            return
        if self.ended:  # cancelled while the RTP port was bound: no 180 after the 487
            return
        self._respond(180, "Ringing")
        await asyncio.sleep(self.line.answer_delay)
        if self.ended:  # cancelled while ringing
            return
        self._respond(200, "OK", body=self._answer(), headers=self._answer_headers())
        self.final_sent = True
        log.info("sip: %s answered", self.name)
        interval, deadline = T1, time.monotonic() + 64 * T1
        while not self.confirmed.is_set() and not self.ended and time.monotonic() < deadline:
            try:
                await asyncio.wait_for(self.confirmed.wait(), interval)
            except TimeoutError:
                if self.line.transport is not None:
                    self.line.transport.sendto(self.last_response, self.addr)
                interval = min(2 * interval, T2)
        if self.ended:  # a BYE before the ACK
            return
        if not self.confirmed.is_set():  # no ACK: §13.3.1.4 says end the dialog with a BYE
            log.info("sip: %s got no ACK; ending it", self.name)
            await self.end(send_bye=True)
            return
        self.task = asyncio.current_task()
        try:
            await asyncio.wait_for(self._converse(), MAX_CALL_SECONDS)
        except TimeoutError:
            log.info("sip: %s reached the %d s limit", self.name, MAX_CALL_SECONDS)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("sip: %s failed", self.name)
        if not self.ended:
            await self.end(send_bye=True)

    def ack(self, req: SipMessage) -> None:
        self.confirmed.set()

    def cancel(self) -> None:
        if self.final_sent:
            return  # §9.2: a CANCEL after the final response has no effect
        self.final_sent = True
        self._respond(487, "Request Terminated")
        # The INVITE sent again gets the 487 again (the dialog is gone).
        self.line._responses[(self.invite_branch, "INVITE")] = (
            self.last_response, time.monotonic() + 64 * T1)
        self.ended = True
        self._close_media()
        self.line.forget(self)
        log.info("sip: %s cancelled by the caller", self.name)

    def notify(self, req: SipMessage) -> None:
        if self.notifications.full():  # a flood: the newest says how the transfer ended
            self.notifications.get_nowait()
        self.notifications.put_nowait(req)

    # -- media --

    def _rtp_in(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if addr[0] != self.offer.address:  # only the caller's media address may key digits
            return
        packet = rtp.RtpPacket.parse(data)
        if packet is not None:
            self.dtmf.feed(packet)

    def _send_rtp(self, data: bytes) -> None:
        if self.rtp_transport is not None and not self.ended:
            self.rtp_transport.sendto(data, (self.offer.address, self.offer.port))

    def _close_media(self) -> None:
        if self.rtp_transport is not None:
            self.rtp_transport.close()

    async def _speak(self, turn: _Turn, stop: asyncio.Event | None) -> None:
        if self.sender is None:
            return
        for say in turn.say:
            path = await asyncio.to_thread(self.line.prompts.wav_for, say)
            try:
                pcm = await asyncio.to_thread(rtp.read_wav_pcm16, path)
            finally:  # a sentence rendered for this call (names, a time) is deleted once read
                await asyncio.to_thread(self.line.prompts.release, path)
            frames = await asyncio.to_thread(rtp.pcmu_frames, pcm)
            if not await self.sender.play(frames, stop):
                return

    def _key_in(self, key: str) -> None:
        swallow, self._swallow = self._swallow, None
        if swallow is not None and key == swallow[0] and time.monotonic() < swallow[1]:
            return
        if len(self._keys) >= MAX_KEYS_WAITING:  # a flood: what was keyed first is kept
            self.keys_dropped += 1
            return
        self._keys.append(key)
        self._key_pressed.set()

    async def _next_key(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while not self._keys:
            self._key_pressed.clear()
            try:
                await asyncio.wait_for(self._key_pressed.wait(), deadline - time.monotonic())
            except TimeoutError:
                return None
        return self._keys.popleft()

    async def _gather(self, gather: _Gather) -> str:
        """Keys until the finish key, ``max_digits`` keys, or ``timeout_seconds`` of none."""
        digits = ""
        while len(digits) < gather.max_digits:
            key = await self._next_key(gather.timeout_seconds)
            if key is None or key == gather.finish_on_key:
                return digits
            digits += key
        # All the digits came: a finish key pressed after them (out of habit: "the code, then
        # #") is not the next question's answer.
        if gather.finish_on_key:
            if self._keys and self._keys[0] == gather.finish_on_key:
                self._keys.popleft()
            elif not self._keys:
                self._swallow = (gather.finish_on_key, time.monotonic() + 2.0)
        return digits

    async def _converse(self) -> None:
        self.sender = rtp.RtpSender(self._send_rtp)
        number = self.calling_number()
        call = await asyncio.to_thread(self.line.calls, number)
        del number
        turn = await asyncio.to_thread(call.start)
        while not self.ended:
            barge_in = asyncio.Event()
            waiter = None
            if turn.gather is not None:  # a key pressed during a prompt cuts it short
                waiter = asyncio.get_running_loop().create_task(self._key_waiting(barge_in))
            try:
                await self._speak(turn, barge_in if turn.gather is not None else None)
            finally:  # also when the call ends (cancelled) mid-prompt
                if waiter is not None:
                    waiter.cancel()
            if turn.transfer is not None:
                await self._transfer(turn.transfer)
                return
            if turn.hangup or turn.gather is None:
                return
            digits = await self._gather(turn.gather)
            turn = await asyncio.to_thread(call.keys, digits) if digits else \
                await asyncio.to_thread(call.silence)
            del digits

    async def _key_waiting(self, barge_in: asyncio.Event) -> None:
        while not self._keys:
            self._key_pressed.clear()
            await self._key_pressed.wait()
        barge_in.set()

    def calling_number(self) -> str | None:
        """The number the call comes from: from a listed trunk, its P-Asserted-Identity
        (RFC 3325; the trunk asserts who called), else the From header's user part."""
        if self.line.is_trunk(self.addr):
            for value in self.invite_req.get_all("p-asserted-identity"):
                for identity in _split_commas(value):
                    if (number := caller_number(identity)) is not None:
                        return number
        return caller_number(self.remote_uri)

    # -- requests inside the dialog --

    def _in_dialog(self, method: str, headers: list[tuple[str, str]]) -> SipMessage:
        self.local_cseq += 1
        host = f"[{self.line.host}]" if ":" in self.line.host else self.line.host
        to = self.remote_uri
        return SipMessage(method=method, uri=self.remote_target, headers=[
            ("via", f"SIP/2.0/UDP {host}:{self.line.port};branch=z9hG4bK{_token()};rport"),
            ("max-forwards", "70"), ("from", f"{self.local_uri};tag={self.local_tag}"
                                     if _param(self.local_uri, "tag") is None else self.local_uri),
            ("to", to), ("call-id", self.call_id), ("cseq", f"{self.local_cseq} {method}"),
            *[("route", r) for r in self.route], ("user-agent", USER_AGENT), *headers])

    async def _transfer(self, transfer: _Transfer) -> None:
        """RFC 3515: ask the caller's side to call the agent (then the queue) and follow the
        outcome in the NOTIFYs (message/sipfrag); our leg ends when the new call is up."""
        targets = [transfer.target]
        if transfer.queue and transfer.queue != transfer.target:
            targets.append(transfer.queue)
        for target in targets:
            refer_to = refer_to_uri(target, transfer.ticket_id)
            host = f"[{self.line.host}]" if ":" in self.line.host else self.line.host
            req = self._in_dialog("REFER", [
                ("refer-to", f"<{refer_to}>"),
                ("referred-by", f"<sip:{host}:{self.line.port}>"),
                (TICKET_HEADER.lower(), transfer.ticket_id),
                ("contact", f"<sip:{host}:{self.line.port}>")])
            while not self.notifications.empty():  # what the last REFER's NOTIFYs said
                self.notifications.get_nowait()
            resp = await self.line.request(req, self.addr)
            if resp is None or resp.status >= 300:
                log.info("sip: %s: the transfer was refused (%s)", self.name,
                         resp.status if resp else "timeout")
                continue
            outcome = await self._transfer_outcome()
            log.info("sip: %s: transfer outcome %s", self.name, outcome or "unknown")
            if outcome is not None and 200 <= outcome < 300:
                return

    async def _transfer_outcome(self) -> int | None:
        deadline = time.monotonic() + 30
        while (left := deadline - time.monotonic()) > 0 and not self.ended:
            try:
                notify = await asyncio.wait_for(self.notifications.get(), left)
            except TimeoutError:
                return None
            frag = notify.body.decode("utf-8", "replace").strip()
            match = re.match(r"SIP/2\.0 (\d{3})", frag)
            if match and int(match.group(1)) >= 200:
                return int(match.group(1))
        return None

    async def end(self, *, send_bye: bool) -> None:
        if self.ended:
            return
        self.ended = True
        self._close_media()
        self.line.forget(self)
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
        if send_bye and self.confirmed.is_set():
            await self.line.request(self._in_dialog("BYE", []), self.addr)
        log.info("sip: %s ended after %.0f s (%s)", self.name, time.monotonic() - self.started,
                 "we hung up" if send_bye else "the caller hung up")


def parse_trunks(trunks: Iterable[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network,
                                                 ...]:
    """IP addresses or networks (``192.0.2.10``, ``192.0.2.0/28``, ``2001:db8::5``) of the SIP
    trunks; ValueError for anything else (a host name is not resolved: an address is pinned)."""
    out = []
    for item in trunks:
        for text in item.split(","):
            if text.strip():
                out.append(ipaddress.ip_network(text.strip(), strict=False))
    if not out:
        raise ValueError("no trunk address given")
    return tuple(out)


def _in_networks(host: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
                 ) -> bool:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
    return any(ip in net for net in networks)


def refer_to_uri(target: str, ticket_id: str) -> str:
    """The Refer-To URI for the agent's transfer target: a SIP URI as registered, or an E.164
    number as a tel: URI (RFC 3966), with the ticket id as a URI parameter that survives the
    referred INVITE's Request-URI."""
    target = target.strip()
    if target.startswith("+"):
        return f"tel:{target};callproof-ticket={ticket_id}"
    return f"{target};callproof-ticket={ticket_id}"


async def _bind_rtp(loop: asyncio.AbstractEventLoop, host: str,
                    on_packet: Callable[[bytes, tuple[Any, ...]], None]
                    ) -> tuple[asyncio.DatagramTransport, asyncio.BaseProtocol]:
    """An even UDP port for RTP (RFC 3550 §11), chosen at random."""
    for _ in range(20):
        port = 2 * (secrets.randbelow(15000) + 10000)  # 20000–49998
        try:
            return await loop.create_datagram_endpoint(lambda: _RtpProtocol(on_packet),
                                                       local_addr=(host, port))
        except OSError:
            continue
    raise OSError("no free RTP port")


def serve(deployment: Deployment, *, host: str, port: int, cache_dir: Path,
          recorded_dir: Path | None = None, max_calls: int = 32,
          ready: Callable[[int], None] | None = None,
          trunks: Iterable[str] | None = None) -> None:
    """Answer calls on ``host``:``port`` (UDP) until SIGINT or SIGTERM; each call runs a
    :class:`~callproof.voice.machine.VoiceCall` on ``deployment``. ``ready`` is told the port
    once the socket is bound (useful with port 0). ``trunks``: the only peers answered (IP
    addresses or networks; see :class:`SipLine`).

    The network a failed lookup counts against is the calling number's block of 10 000
    (spec/voice-line.md §5), not the trunk: a trunk carries every caller."""
    import signal

    from callproof.voice.machine import VoiceCall
    from callproof.voice.prompts import PromptAudio

    def call_for(number: str | None) -> VoiceCall:
        return VoiceCall(deployment, caller_number=number, channel="sip")

    async def main() -> None:
        line = SipLine(call_for, PromptAudio(cache_dir, recorded_dir), host=host, port=port,
                       max_calls=max_calls, trunks=trunks)
        await line.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if ready is not None:
            ready(line.port)
        await stop.wait()
        await line.close()  # a BYE to every call under way

    asyncio.run(main())
