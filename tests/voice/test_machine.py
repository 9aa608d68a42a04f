"""The voice check through the library (spec/voice-line.md): the check page's steps over the
keypad, on SQLite and PostgreSQL, as a customer on the phone would meet them."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from callproof import IssuedTicket, new_client_token
from callproof.config import Voice
from callproof.errors import CheckFailed
from callproof.protocol import events as ev
from callproof.protocol import states
from callproof.protocol.codes import damm_digit
from callproof.store.events import read_events
from callproof.voice.machine import Turn, VoiceCall
from callproof.voice.routes import Routes

from ..conftest import World

PHONE = "+886912345678"
OTHER_PHONE = "+886987654321"


def issue(w: World, phone: str | None = PHONE) -> IssuedTicket:
    call = w.issuer.issue(agent_id="a-001", reason="payment_failed", phone=phone)
    w.issuer.connected(call.ticket_id)
    return call


def events_of(w: World, ticket_id: str) -> list[ev.Event]:
    with w.deployment.store.read() as conn:
        return read_events(conn, w.deployment.issuer_id, ticket_id=ticket_id)


def said(turn: Turn) -> str:
    return " ".join(s.text for s in turn.say)


def keys_of(turn: Turn) -> list[str]:
    return [s.key for s in turn.say]


def dial(w: World, caller: str | None = PHONE, lang_key: str = "1") -> tuple[VoiceCall, Turn]:
    voice = VoiceCall(w.deployment, caller_number=caller, channel="sip")
    first = voice.start()
    if first.hangup:
        return voice, first
    return voice, voice.keys(lang_key)


def test_a_genuine_code_names_the_agent_and_puts_the_customer_back_through(
        world: World) -> None:
    w = world
    Routes(w.deployment).set("a-001", transfer_target="sip:mei.lin@pbx.shop.example",
                             queue="sip:billing@pbx.shop.example")
    call = issue(w)
    voice = VoiceCall(w.deployment, caller_number=PHONE, channel="twiml")
    menu = voice.start()
    assert [s.lang for s in menu.say] == ["en", "zh-Hant", "zh-Hans"]
    assert "press 1" in menu.say[0].text and "國語請按 2" in menu.say[1].text
    assert "普通话请按 3" in menu.say[2].text and menu.gather and menu.gather.max_digits == 1
    ask = voice.keys("1")
    assert keys_of(ask) == ["enter_code"] and ask.gather and ask.gather.finish_on_key == "#"
    # The network answers the phone question, and no check word is asked: the customer hung
    # up on the agent, so there is no agent to say one.
    done = voice.keys(call.code + "#")
    assert keys_of(done) == ["verified", "offer_transfer"]
    text = said(done)
    assert "check word" not in text
    assert "Yes. This is" in text and "Mei Lin" in text
    assert "called you at 17:30, about: " in text  # 09:30 UTC, in Taipei
    assert "To speak to Mei Lin again, press 1." in text and done.gather is not None
    assert w.issuer.status(call.ticket_id).state == states.VERIFIED
    put = voice.keys("1")
    assert put.transfer is not None and put.transfer.target == "sip:mei.lin@pbx.shop.example"
    assert put.transfer.queue == "sip:billing@pbx.shop.example"
    assert put.transfer.ticket_id == call.ticket_id and keys_of(put) == ["transferring"]
    got = events_of(w, call.ticket_id)
    assert [e.type for e in got][-4:] == [ev.TICKET_CLAIMED, ev.NUMBER_CONFIRMED,
                                          ev.TICKET_VERIFIED, ev.CALLED_BACK]
    assert all(e.data["channel"] == "voice" for e in got[-4:])
    assert got[-1].data == {"channel": "voice", "to": "agent", "ticket_id": call.ticket_id,
                            "checked": True}
    # The agent's console lists the call-back with the ticket.
    alerts = [a["type"] for a in w.issuer.status(call.ticket_id).alerts]
    assert ev.CALLED_BACK in alerts


def test_a_code_relayed_from_another_phone_fails_and_alerts(world: World) -> None:
    w = world
    call = issue(w)
    voice, _ask = dial(w, caller=OTHER_PHONE)
    turn = voice.keys(call.code)
    assert turn.hangup and turn.gather is None and keys_of(turn) == ["failed"]
    assert said(turn).startswith("We cannot confirm this call. Hang up now.")
    assert "plus 8 8 6, 2, 1 2 3 4, 5 6 7 8" in said(turn)  # the official number, digit by digit
    status = w.issuer.status(call.ticket_id)
    assert status.state == states.FAILED
    assert [a["type"] for a in status.alerts] == [states.CAUSE_NUMBER_DENIED]
    types = [e.type for e in events_of(w, call.ticket_id)]
    assert types[-3:] == [ev.TICKET_CLAIMED, ev.NUMBER_DENIED, ev.TICKET_FAILED]
    assert voice.keys("1").hangup  # nothing more on this call


def test_a_national_form_of_the_same_number_is_the_same_phone(world: World) -> None:
    w = world
    call = issue(w)
    voice, _ask = dial(w, caller="0912345678")  # as a Taiwanese network may present it
    assert keys_of(voice.keys(call.code))[0] == "verified"


def test_a_typo_is_said_as_such_and_star_starts_again(world: World) -> None:
    w = world
    call = issue(w)
    voice, _ask = dial(w)
    typo = call.code[:8] + str((int(call.code[8]) + 1) % 10)
    again = voice.keys(typo)
    assert keys_of(again) == ["code_typo", "enter_code"] and not again.hangup
    assert "One digit of the call code is not right" in said(again)
    short = voice.keys("1234#")
    assert keys_of(short) == ["code_format", "enter_code"]
    restart = voice.keys("48*")
    assert keys_of(restart) == ["start_again", "enter_code"]
    # Neither a typo nor a short code is a failed lookup: the genuine code still works.
    assert keys_of(voice.keys(call.code))[0] == "verified"
    with world.deployment.store.read() as conn:
        from callproof.store import schema
        assert conn.execute(schema.client_failures.select()).first() is None


def test_the_voice_line_never_asks_for_the_check_word(world: World) -> None:
    # ADR 0004's word binds a page to the live call; the voice line's customer has hung up.
    w = world
    call = issue(w)
    voice, _ask = dial(w)
    turn = voice.keys(call.code)
    assert "choose_word" not in keys_of(turn) and "word" not in said(turn).lower()
    status = w.issuer.status(call.ticket_id)
    assert status.state == states.VERIFIED and status.check_word is None
    assert ev.WORD_WRONG not in [e.type for e in events_of(w, call.ticket_id)]


def test_guessed_codes_fail_and_count_against_the_calling_number(world: World) -> None:
    w = world
    call = issue(w)
    limits = w.deployment.config.limits
    w.deployment.config = dataclasses.replace(
        w.deployment.config, limits=dataclasses.replace(limits, client_failure_limit=3),
        voice=Voice(calls_per_number_hour=50))
    for n in range(3):
        voice, _ask = dial(w)
        body = f"{10_000_000 + n:08d}"
        turn = voice.keys(body + damm_digit(body))
        assert keys_of(turn) == ["failed"] and turn.hangup
        assert voice.outcome == "not_found"
    # The number has spent its budget: even the genuine code is refused now, and not claimed.
    voice, _ask = dial(w)
    turn = voice.keys(call.code)
    assert keys_of(turn) == ["failed"] and voice.outcome == "too_many_tries"
    assert w.issuer.status(call.ticket_id).state == states.CONNECTED
    # Another number (another block) is not held back by it.
    voice, _ask = dial(w, caller="+886955000111")
    voice.keys(call.code)
    assert voice.outcome == "number_denied"


def test_claim_once_holds_from_the_page_to_the_phone(world: World) -> None:
    w = world
    call = issue(w)
    w.flow.lookup(call.code, new_client_token())  # checked on the page first
    voice, _ask = dial(w)
    turn = voice.keys(call.code)
    assert keys_of(turn) == ["failed"] and voice.outcome == "claimed_elsewhere"
    status = w.issuer.status(call.ticket_id)
    assert status.state == states.FAILED and states.CAUSE_CLAIMED_ELSEWHERE in \
        [a["type"] for a in status.alerts]


def test_claim_once_holds_from_the_phone_to_the_page(world: World) -> None:
    w = world
    call = issue(w)
    voice, _ask = dial(w)
    voice.keys(call.code)
    with pytest.raises(CheckFailed) as caught:
        w.flow.lookup(call.code, new_client_token())
    assert caught.value.outcome == "claimed_elsewhere"
    assert w.issuer.status(call.ticket_id).state == states.FAILED


def test_a_withheld_number_is_asked_to_call_from_the_phone_we_called(world: World) -> None:
    w = world
    call = issue(w)
    for caller in (None, "", "anonymous", "sip:anonymous@anonymous.invalid"):
        voice = VoiceCall(w.deployment, caller_number=caller, channel="sip")
        turn = voice.start()
        assert turn.hangup and keys_of(turn) == ["withheld"] * 3
        assert "call us again from the phone we called" in turn.say[0].text
    assert w.issuer.status(call.ticket_id).state == states.CONNECTED  # not claimed, not failed


def test_calls_per_number_are_capped_an_hour(world: World) -> None:
    w = world
    w.deployment.config = dataclasses.replace(w.deployment.config,
                                              voice=Voice(calls_per_number_hour=2))
    for _ in range(2):
        assert not VoiceCall(w.deployment, caller_number=PHONE, channel="sip").start().hangup
    turn = VoiceCall(w.deployment, caller_number=PHONE, channel="sip").start()
    assert turn.hangup and keys_of(turn) == ["too_many_calls"] * 3
    assert not VoiceCall(w.deployment, caller_number=OTHER_PHONE, channel="sip").start().hangup


def test_mandarin_in_taiwan_wording(world: World) -> None:
    w = world
    Routes(w.deployment).set("a-001", transfer_target="+886223456700")
    call = issue(w)
    voice, ask = dial(w, lang_key="2")
    assert ask.say[0].lang == "zh-Hant" and "來電確認碼" in ask.say[0].text
    done = voice.keys(call.code)
    assert "確認詞" not in said(done)
    assert done.say[0].text.startswith("已確認：這是")
    assert "在17點30分打電話給您" in done.say[0].text
    assert "要再和林美玲通話，請按 1。" in said(done)  # the demo agent's zh-Hant name


def test_mandarin_in_mainland_wording_and_its_failure(world: World) -> None:
    w = world
    call = issue(w)
    voice, ask = dial(w, caller=OTHER_PHONE, lang_key="3")
    assert "请输入" in ask.say[0].text
    turn = voice.keys(call.code)
    assert said(turn).startswith("无法确认这通电话。请立即挂断电话。")


def test_a_busy_agent_sends_the_customer_to_the_team_queue(world: World) -> None:
    w = world
    Routes(w.deployment).set("a-001", transfer_target="sip:mei.lin@pbx.shop.example",
                             queue="sip:billing@pbx.shop.example")
    call = issue(w)
    voice, _ask = dial(w)
    assert keys_of(voice.keys(call.code)) == ["verified", "offer_transfer"]
    later = issue(w, phone="+886911000222")  # the agent is on the next customer's call
    put = voice.keys("1")
    assert put.transfer is not None and put.transfer.target == "sip:billing@pbx.shop.example"
    assert keys_of(put) == ["transferring_queue"]
    assert events_of(w, call.ticket_id)[-1].data["to"] == "queue"
    assert later.ticket_id != call.ticket_id


def test_no_route_means_no_offer(world: World) -> None:
    w = world
    call = issue(w)
    voice, _ask = dial(w)
    done = voice.keys(call.code)
    assert done.hangup and done.transfer is None and keys_of(done)[-1] == "thanks"


def test_silence_repeats_then_says_goodbye(world: World) -> None:
    w = world
    voice = VoiceCall(w.deployment, caller_number=PHONE, channel="sip")
    voice.start()
    assert keys_of(voice.silence()) == ["choose_language"] * 3
    assert keys_of(voice.keys("9")) == ["not_a_choice", "choose_language", "choose_language",
                                        "choose_language"]
    bye = voice.silence()
    assert bye.hangup and keys_of(bye) == ["goodbye"] * 3


def test_no_number_code_or_key_in_logs_or_events(world: World,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    w = world
    caplog.set_level(logging.DEBUG)
    call = issue(w)
    voice, _ask = dial(w, caller=OTHER_PHONE)
    voice.keys(call.code)
    with w.deployment.store.read() as conn:
        bodies = b"".join(e.to_bytes() for e in read_events(conn, w.deployment.issuer_id))
    for secret in (call.code, OTHER_PHONE, OTHER_PHONE[1:], PHONE[1:], "912345678"):
        assert secret not in caplog.text and secret.encode() not in bodies
    assert "outcome=number_denied" in caplog.text
    assert "987654321" not in repr(voice) and "987654321" not in str(voice.snapshot())


def test_a_wave_of_wrong_codes_holds_back_numbers_with_failures_only(world: World) -> None:
    w = world
    call = issue(w)
    w.deployment.config = dataclasses.replace(
        w.deployment.config, limits=dataclasses.replace(w.deployment.config.limits,
                                                        global_failure_budget=2),
        voice=Voice(calls_per_number_hour=50))
    for n in range(3):  # a third failure in the minute passes the budget: the breaker trips
        voice, _ask = dial(w, caller=OTHER_PHONE)
        body = f"{30_000_000 + n:08d}"
        voice.keys(body + damm_digit(body))
    assert w.flow.wave() is not None
    voice, _ask = dial(w, caller=OTHER_PHONE)
    voice.keys(call.code)
    assert voice.outcome == "rate_limited"
    assert w.issuer.status(call.ticket_id).state == states.CONNECTED
    # The customer's own phone has no failures: served during the wave.
    voice, _ask = dial(w)
    assert keys_of(voice.keys(call.code))[0] == "verified"


def test_a_genuine_call_back_after_the_dialer_closed_the_ticket_is_verified_and_put_through(
        world: World) -> None:
    # The customer hung up on the agent (the dialer reports it at once), looked up the number
    # on the card and called it: the after-the-call check (spec/voice-line.md §2).
    w = world
    Routes(w.deployment).set("a-001", transfer_target="sip:mei.lin@pbx.shop.example")
    call = issue(w)
    w.issuer.close(call.ticket_id)
    w.clock.advance(seconds=700)  # past the page's 600 s code window, before exp (900 s)
    voice, _ask = dial(w)
    done = voice.keys(call.code)
    assert keys_of(done) == ["verified", "offer_transfer"] and "Mei Lin" in said(done)
    assert w.issuer.status(call.ticket_id).state == states.VERIFIED
    put = voice.keys("1")
    assert put.transfer is not None and put.transfer.target == "sip:mei.lin@pbx.shop.example"
    got = events_of(w, call.ticket_id)
    assert [e.type for e in got][-5:] == [ev.TICKET_CLOSED, ev.TICKET_CLAIMED,
                                          ev.NUMBER_CONFIRMED, ev.TICKET_VERIFIED,
                                          ev.CALLED_BACK]
    assert got[-4].data["channel"] == "voice"


def test_a_code_relayed_after_the_hang_up_fails_and_alerts(world: World) -> None:
    w = world
    call = issue(w)
    w.issuer.close(call.ticket_id)
    voice, _ask = dial(w, caller=OTHER_PHONE)
    turn = voice.keys(call.code)
    assert keys_of(turn) == ["failed"] and voice.outcome == "number_denied"
    status = w.issuer.status(call.ticket_id)
    assert status.state == states.FAILED
    assert [a["type"] for a in status.alerts] == [states.CAUSE_NUMBER_DENIED]
    # The genuine phone cannot check it any more either.
    voice, _ask = dial(w)
    assert keys_of(voice.keys(call.code)) == ["failed"] and voice.outcome == "failed"


def test_a_closed_ticket_that_was_claimed_on_the_page_is_refused_on_the_voice_line(
        world: World) -> None:
    w = world
    call = issue(w)
    w.flow.lookup(call.code, new_client_token())  # the page claimed it during the call
    w.issuer.close(call.ticket_id)
    voice, _ask = dial(w)
    turn = voice.keys(call.code)
    assert keys_of(turn) == ["failed"] and voice.outcome == "closed" and turn.hangup
    assert w.issuer.status(call.ticket_id).state == states.CLOSED


def test_the_page_still_refuses_a_closed_ticket(world: World) -> None:
    w = world
    call = issue(w)
    w.issuer.close(call.ticket_id)
    with pytest.raises(CheckFailed) as caught:
        w.flow.lookup(call.code, new_client_token())
    assert caught.value.outcome == "closed"
    assert w.issuer.status(call.ticket_id).state == states.CLOSED


@pytest.mark.parametrize("how", ["failed", "revoked", "expired"])
def test_a_failed_revoked_or_expired_ticket_is_refused_on_the_voice_line(
        world: World, how: str) -> None:
    w = world
    call = issue(w)
    if how == "failed":
        with pytest.raises(CheckFailed):
            w.flow.answer_number(w.flow.lookup(call.code, token := new_client_token())
                                 .ticket_id, token, yes=False)
    elif how == "revoked":
        w.issuer.revoke_ticket(call.ticket_id)
    w.issuer.close(call.ticket_id)
    if how == "expired":
        w.clock.advance(seconds=900)  # exp: the after-the-call check ends with the ticket
    voice, _ask = dial(w)
    turn = voice.keys(call.code)
    assert keys_of(turn) == ["failed"] and turn.hangup
    assert voice.outcome in (how, "closed")
    assert w.issuer.status(call.ticket_id).state != states.VERIFIED


def test_a_ticket_without_a_number_is_not_claimed_and_the_team_is_offered(world: World) -> None:
    w = world
    Routes(w.deployment).set("a-001", transfer_target="sip:mei.lin@pbx.shop.example",
                             queue="sip:billing@pbx.shop.example")
    call = issue(w, phone=None)
    for lang_key, says in (("1", "This call cannot be checked by phone."),
                           ("2", "這通來電無法用電話查證。"), ("3", "这通来电无法通过电话查证。")):
        voice, _ask = dial(w, lang_key=lang_key)
        turn = voice.keys(call.code)
        assert keys_of(turn) == ["no_phone_check", "offer_team"] and turn.gather is not None
        assert turn.say[0].text == says and "Mei Lin" not in said(turn)
    put = voice.keys("1")
    assert keys_of(put) == ["transferring_team"] and put.transfer is not None
    assert put.transfer.target == "sip:billing@pbx.shop.example"
    assert put.transfer.ticket_id == call.ticket_id
    # Not claimed: it stays checkable on the page.
    assert w.issuer.status(call.ticket_id).state == states.CONNECTED
    step = w.flow.lookup(call.code, new_client_token())
    assert step.step == "word"


def test_a_ticket_without_a_number_and_no_team_gets_the_official_number(world: World) -> None:
    w = world
    call = issue(w, phone=None)
    voice, _ask = dial(w)
    turn = voice.keys(call.code)
    assert keys_of(turn) == ["no_phone_check", "no_phone_advice"] and turn.hangup
    assert "plus 8 8 6, 2, 1 2 3 4, 5 6 7 8" in said(turn)
    assert w.issuer.status(call.ticket_id).state == states.CONNECTED


@pytest.mark.parametrize("channel", ["sip", "twiml"])
def test_a_redial_from_the_same_phone_hears_its_verified_ticket_again(
        world: World, channel: str) -> None:
    """The call dropped (or the customer hung up before pressing 1) and they call again: the
    same phone is the same client, so the genuine customer hears "Yes …" again and is offered
    the transfer, instead of a relay failure on the company's own line."""
    w = world
    Routes(w.deployment).set("a-001", transfer_target="sip:mei.lin@pbx.shop.example")
    call = issue(w)
    first = VoiceCall(w.deployment, caller_number=PHONE, channel=channel,
                      call_id="CA" + "1" * 32 if channel == "twiml" else None)
    first.start()
    first.keys("1")
    assert keys_of(first.keys(call.code)) == ["verified", "offer_transfer"]
    # A new call (a new call id), the number as the network may present it nationally.
    again = VoiceCall(w.deployment, caller_number="0912345678", channel=channel,
                      call_id="CA" + "2" * 32 if channel == "twiml" else None)
    again.start()
    again.keys("2")
    turn = again.keys(call.code)
    assert keys_of(turn) == ["verified", "offer_transfer"] and not turn.hangup
    assert "林美玲" in said(turn) or "Mei Lin" in said(turn)
    status = w.issuer.status(call.ticket_id)
    assert status.state == states.VERIFIED and status.alerts == []
    put = again.keys("1")
    assert put.transfer is not None and put.transfer.target == "sip:mei.lin@pbx.shop.example"
    types = [e.type for e in events_of(w, call.ticket_id)]
    assert types.count(ev.TICKET_CLAIMED) == 1 and types.count(ev.TICKET_VERIFIED) == 1
    assert ev.TICKET_FAILED not in types and ev.CLAIMED_ELSEWHERE not in types
    # Another phone with the same code is still the relay case.
    other = VoiceCall(w.deployment, caller_number=OTHER_PHONE, channel=channel,
                      call_id="CA" + "3" * 32 if channel == "twiml" else None)
    other.start()
    other.keys("1")
    assert keys_of(other.keys(call.code)) == ["failed"]
    assert w.issuer.status(call.ticket_id).state == states.FAILED


def test_a_no_number_ticket_claimed_on_another_device_is_refused_as_a_relay(
        world: World) -> None:
    """A ticket without a number that someone already typed on a page: the voice line does not
    wave the caller through to the team; it is the relay case, as on the page."""
    w = world
    Routes(w.deployment).set("a-001", queue="sip:billing@pbx.shop.example")
    call = issue(w, phone=None)
    w.flow.lookup(call.code, new_client_token())  # the scammer's page has it
    voice, _ask = dial(w)
    turn = voice.keys(call.code)
    assert keys_of(turn) == ["failed"] and turn.hangup and turn.transfer is None
    assert voice.outcome == "claimed_elsewhere"
    status = w.issuer.status(call.ticket_id)
    assert status.state == states.FAILED
    assert [a["type"] for a in status.alerts] == [states.CAUSE_CLAIMED_ELSEWHERE]
    assert ev.CALLED_BACK not in [e.type for e in events_of(w, call.ticket_id)]


def test_a_no_number_ticket_past_its_code_window_is_refused(world: World) -> None:
    w = world
    Routes(w.deployment).set("a-001", queue="sip:billing@pbx.shop.example")
    call = issue(w, phone=None)
    w.clock.advance(seconds=w.deployment.config.limits.code_window_seconds + 1)
    voice, _ask = dial(w)
    turn = voice.keys(call.code)
    assert keys_of(turn) == ["failed"] and turn.transfer is None
    assert ev.CALLED_BACK not in [e.type for e in events_of(w, call.ticket_id)]


def test_the_team_hears_an_unchecked_caller_as_not_checked(world: World) -> None:
    w = world
    Routes(w.deployment).set("a-001", queue="sip:billing@pbx.shop.example")
    call = issue(w, phone=None)
    voice, _ask = dial(w)
    voice.keys(call.code)
    put = voice.keys("1")
    assert put.transfer is not None and keys_of(put) == ["transferring_team"]
    assert events_of(w, call.ticket_id)[-1].data == {
        "channel": "voice", "to": "queue", "ticket_id": call.ticket_id, "checked": False}
    # The agent's console: not "the customer called back", but an unchecked caller.
    alerts = [a["type"] for a in w.issuer.status(call.ticket_id).alerts]
    assert alerts == ["ticket.called_back_unchecked"]


def test_a_ticket_checked_on_the_voice_line_does_not_make_the_agent_busy(world: World) -> None:
    """Two customers of one agent call back after their calls ended; the second one's check on
    the line is no call of the agent's, so the first is still put through to the agent."""
    w = world
    Routes(w.deployment).set("a-001", transfer_target="sip:mei.lin@pbx.shop.example",
                             queue="sip:billing@pbx.shop.example")
    first = issue(w)
    w.issuer.close(first.ticket_id)
    w.clock.advance(seconds=60)
    second = issue(w, phone=OTHER_PHONE)
    w.issuer.close(second.ticket_id)
    voice, _ask = dial(w)
    assert keys_of(voice.keys(first.code)) == ["verified", "offer_transfer"]
    other, _ask = dial(w, caller=OTHER_PHONE)
    assert keys_of(other.keys(second.code)) == ["verified", "offer_transfer"]
    assert w.issuer.status(second.ticket_id).state == states.VERIFIED
    put = voice.keys("1")
    assert put.transfer is not None and put.transfer.target == "sip:mei.lin@pbx.shop.example"
    assert keys_of(put) == ["transferring"]
    # A later call the agent is really on still sends the customer to the queue.
    w.clock.advance(seconds=60)
    issue(w, phone="+886911000222")
    assert Routes(w.deployment).agent_busy("a-001", first.ticket_id)
