"""The voice line over SIP, end to end on loopback with a real, independent SIP phone.

Debian's baresip is the customer's phone: it dials the official number at the SIP adapter,
hears the prompts (recorded to a WAV by its sndfile module), keys the call code as RFC 4733
events, and follows the adapter's REFER to the agent's line (a small SIP endpoint here). The
adapter runs the real :class:`~callproof.voice.machine.VoiceCall` and the real prompts (espeak-ng).
Skipped without baresip, unless CALLPROOF_REQUIRE_VOICE=1 (as in CI), where it fails instead.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from callproof import IssuedTicket
from callproof.protocol import events as ev
from callproof.protocol import states
from callproof.protocol.codes import damm_digit
from callproof.store.events import read_events
from callproof.voice import machine
from callproof.voice.machine import Say, VoiceCall
from callproof.voice.prompts import PromptAudio
from callproof.voice.routes import Routes
from callproof.voice.sip import SipLine

from ..conftest import World
from .sipphone import (
    AgentLine,
    Baresip,
    heard_prompt,
    require_baresip,
    speech_seconds,
    voice_required,
    wait_until,
)

PHONE = "+886912345678"
OTHER_PHONE = "+886987654321"

pytestmark = [pytest.mark.slow,
              pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]


@pytest.fixture(autouse=True)
def _baresip_present() -> None:
    reason = require_baresip()
    if reason:
        if voice_required():
            pytest.fail(f"the SIP adapter's end-to-end test is required here: {reason}")
        pytest.skip(reason)


class Recorded:
    """A call's VoiceCall, with the turns it gave the line (what the caller was told)."""

    def __init__(self, voice: VoiceCall) -> None:
        self.voice = voice
        self.turns: list[machine.Turn] = []

    def _keep(self, turn: machine.Turn) -> machine.Turn:
        self.turns.append(turn)
        return turn

    def start(self) -> machine.Turn:
        return self._keep(self.voice.start())

    def keys(self, digits: str) -> machine.Turn:
        return self._keep(self.voice.keys(digits))

    def silence(self) -> machine.Turn:
        return self._keep(self.voice.silence())


class StreamedPrompts(PromptAudio):
    """The real prompts, keeping a copy of each file the line streamed: a sentence rendered
    for the call is deleted once read (and a new rendering is not the same samples: SoX
    dithers), so the test compares what the phone heard with what was actually sent."""

    def __init__(self, cache: Path) -> None:
        super().__init__(cache)
        self.copies = cache.parent / f"{cache.name}-streamed"
        self.copies.mkdir(exist_ok=True)
        self._streamed: dict[tuple[str, str, str], Path] = {}
        self.released: list[Path] = []

    def wav_for(self, say: Say) -> Path:
        path = super().wav_for(say)
        copy = self.copies / f"{len(self._streamed)}.wav"
        shutil.copyfile(path, copy)
        self._streamed[(say.key, say.lang, say.text)] = copy
        return path

    def release(self, path: Path) -> None:
        self.released.append(path)
        super().release(path)

    def streamed(self, say: Say) -> Path:
        return self._streamed[(say.key, say.lang, say.text)]


class LineThread:
    """The SIP adapter on its own event loop in a thread, as `callproof voice sip` runs it;
    it keeps each call's VoiceCall and its turns, so the test can follow the steps as the
    customer hears them."""

    def __init__(self, w: World, cache: Path) -> None:
        self.dep = w.deployment
        self.calls: list[Recorded] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.prompts = StreamedPrompts(cache)
        self.line = SipLine(self._call, self.prompts, host="127.0.0.1", port=0)
        asyncio.run_coroutine_threadsafe(self.line.start(), self.loop).result(5)
        self.port = self.line.port

    def _call(self, number: str | None) -> Recorded:
        call = Recorded(VoiceCall(self.dep, caller_number=number, channel="sip"))
        self.calls.append(call)
        return call

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.line.close(), self.loop).result(40)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    def wait_step(self, step: str, seconds: float = 30) -> VoiceCall:
        wait_until(lambda: self.calls and self.calls[-1].voice.step == step, seconds,
                   f"step {step}")
        return self.calls[-1].voice


@pytest.fixture
def sip_line(world: World, prompt_cache: Path) -> Iterator[LineThread]:
    running = LineThread(world, prompt_cache)
    yield running
    running.close()


def official(w: World) -> str:
    return w.deployment.config.company.official_number.replace(" ", "")


def issue(w: World, phone: str = PHONE) -> IssuedTicket:
    call = w.issuer.issue(agent_id="a-001", reason="payment_failed", phone=phone)
    w.issuer.connected(call.ticket_id)
    return call


def event_types(w: World, ticket_id: str) -> list[str]:
    with w.deployment.store.read() as conn:
        return [e.type for e in read_events(conn, w.deployment.issuer_id, ticket_id=ticket_id)]


def dial_and_key_code(w: World, line: LineThread, phone: Baresip, code: str) -> float:
    """Call the official number, listen to the language menu, choose English, key the code;
    when the call was dialled (time.monotonic)."""
    dialled = time.monotonic()
    phone.dial(f"sip:{official(w)}@127.0.0.1:{line.port}")
    phone.wait_event("CALL_ESTABLISHED", 20)
    # The first call renders the prompts (espeak-ng) before it speaks: allow for a busy machine,
    # and on a time-out say what the phone saw.
    try:
        wait_until(lambda: len(phone.heard()) > 2 * 8000 * 2, 60, "two seconds of the menu")
    except AssertionError as e:
        said = [ln for ln in phone.log().splitlines() if ln.strip() and "audio=" not in ln]
        raise AssertionError(f"{e}; the phone heard {len(phone.heard())} bytes; the line is at "
                             f"{[c.voice.step for c in line.calls]!r}; baresip's log ends:\n"
                             + "\n".join(said[-40:])) from None
    phone.keys("1")  # English: the key cuts the menu short
    line.wait_step(machine.CODE, 30)
    phone.keys(code + "#")
    return dialled


def test_a_customer_calls_keys_a_genuine_code_hears_the_agent_and_is_put_through(
        world: World, sip_line: LineThread, tmp_path: Path, caplog: pytest.LogCaptureFixture
        ) -> None:
    w = world
    caplog.set_level(logging.DEBUG)
    with AgentLine() as agent, Baresip(tmp_path, number=PHONE) as phone:
        Routes(w.deployment).set("a-001", transfer_target=f"sip:mei.lin@127.0.0.1:{agent.port}",
                                 queue=None)
        call = issue(w)
        # The customer hung up on the agent and the dialer reported it at once; then they
        # called the official number: the after-the-call check, with no check word.
        w.issuer.close(call.ticket_id)
        dialled = dial_and_key_code(w, sip_line, phone, call.code)
        heard_before = len(phone.heard())
        sip_line.wait_step(machine.OFFER)
        # "Yes — Mei Lin … called you at …, press 1 to speak to Mei Lin again": let it play.
        wait_until(lambda: len(phone.heard()) > heard_before + 8000 * 2 * 6, 30, "the answer")
        phone.keys("1")
        # The transfer: baresip follows the REFER and calls the agent's line itself.
        invite = agent.wait_invite(20)
        assert invite.uri.startswith(f"sip:mei.lin@127.0.0.1:{agent.port}")
        assert f"callproof-ticket={call.ticket_id}" in invite.uri
        assert PHONE in invite.headers["from"]  # the customer's own phone, not the line
        # The transfer succeeded (NOTIFY 200): the line hangs up its own leg.
        phone.wait_event("CALL_CLOSED", 20, peer=f":{sip_line.port}")
        assert time.monotonic() - dialled < 60
    heard = phone.heard()
    assert speech_seconds(heard) > 5, "the prompts were not streamed as speech"
    # Each question once: no key lost, none taken twice (the "#" after the code is not the
    # offer's answer).
    turns = sip_line.calls[-1].turns
    assert [t.say[0].key for t in turns] == [
        "choose_language", "enter_code", "verified", "transferring"]
    # What the phone heard is the prompts themselves: the menu, the answer naming Mei Lin.
    assert heard_prompt(heard, sip_line.prompts.streamed(turns[0].say[0]))
    assert "Mei Lin" in turns[2].say[0].text
    assert heard_prompt(heard, sip_line.prompts.streamed(turns[2].say[0]), at=1.0)
    # The sentence naming Mei Lin was rendered for this call only, and deleted once streamed.
    own = [p for p in sip_line.prompts.released if p.parent.name == "calls"]
    assert own and not any(p.exists() for p in own)
    assert w.issuer.status(call.ticket_id).state == states.VERIFIED
    types = event_types(w, call.ticket_id)
    assert types[-5:] == [ev.TICKET_CLOSED, ev.TICKET_CLAIMED, ev.NUMBER_CONFIRMED,
                          ev.TICKET_VERIFIED, ev.CALLED_BACK]
    # The line's REFER, as baresip received it: the agent's target with the ticket id.
    refer = phone.log().split("REFER sip:", 1)[1].split("\n\n", 1)[0]
    assert f"Refer-To: <sip:mei.lin@127.0.0.1:{agent.port};callproof-ticket={call.ticket_id}>" \
        in refer
    assert f"X-Callproof-Ticket: {call.ticket_id}" in refer
    # Nothing secret in the line's logs.
    for secret in (PHONE, PHONE[4:], call.code, call.code_display):
        assert secret not in caplog.text


def test_when_the_agents_line_is_busy_the_customer_is_put_through_to_the_team_queue(
        world: World, sip_line: LineThread, tmp_path: Path) -> None:
    w = world
    with AgentLine(answer=486) as agent, AgentLine() as queue, \
            Baresip(tmp_path, number=PHONE) as phone:
        Routes(w.deployment).set("a-001", transfer_target=f"sip:mei.lin@127.0.0.1:{agent.port}",
                                 queue=f"sip:billing@127.0.0.1:{queue.port}")
        call = issue(w)
        dialled = dial_and_key_code(w, sip_line, phone, call.code)
        sip_line.wait_step(machine.OFFER)
        phone.keys("1")
        assert f"callproof-ticket={call.ticket_id}" in agent.wait_invite(20).uri  # 486 Busy
        invite = queue.wait_invite(20)
        assert invite.uri.startswith(f"sip:billing@127.0.0.1:{queue.port};")
        assert f"callproof-ticket={call.ticket_id}" in invite.uri
        phone.wait_event("CALL_CLOSED", 20, peer=f":{sip_line.port}")
        assert time.monotonic() - dialled < 60


def test_a_code_relayed_from_another_phone_fails_and_alerts(
        world: World, sip_line: LineThread, tmp_path: Path) -> None:
    w = world
    call = issue(w)  # for PHONE, but the scammer's victim reads it out to another phone
    w.issuer.close(call.ticket_id)  # the scammer hangs up: the relay is refused after it too
    with Baresip(tmp_path, number=OTHER_PHONE) as phone:
        dialled = dial_and_key_code(w, sip_line, phone, call.code)
        # The failure's words, then the line hangs up.
        phone.wait_event("CALL_CLOSED", 40, peer=f":{sip_line.port}")
        assert time.monotonic() - dialled < 60
        status = w.issuer.status(call.ticket_id)
        assert status.state == states.FAILED
        assert [a["type"] for a in status.alerts] == [states.CAUSE_NUMBER_DENIED]
        last = sip_line.calls[-1].turns[-1]
        assert [s.key for s in last.say] == ["failed"] and last.hangup
    assert event_types(w, call.ticket_id)[-4:] == [ev.TICKET_CLOSED, ev.TICKET_CLAIMED,
                                                   ev.NUMBER_DENIED, ev.TICKET_FAILED]
    assert speech_seconds(phone.heard()) > 4
    assert heard_prompt(phone.heard(), sip_line.prompts.streamed(last.say[0]), at=2.0)


def test_a_guessed_code_fails_like_on_the_page(
        world: World, sip_line: LineThread, tmp_path: Path) -> None:
    w = world
    genuine = issue(w)
    stem = f"{secrets.randbelow(10**8):08d}"
    guess = stem + damm_digit(stem)
    assert guess != genuine.code
    with Baresip(tmp_path, number=PHONE) as phone:
        dialled = dial_and_key_code(w, sip_line, phone, guess)
        phone.wait_event("CALL_CLOSED", 40, peer=f":{sip_line.port}")
        assert time.monotonic() - dialled < 60
        last = sip_line.calls[-1].turns[-1]
        assert [s.key for s in last.say] == ["failed"] and last.hangup  # the page's words
    assert w.issuer.status(genuine.ticket_id).state == states.CONNECTED  # untouched
    assert speech_seconds(phone.heard()) > 4
    assert heard_prompt(phone.heard(), sip_line.prompts.streamed(last.say[0]), at=2.0)
