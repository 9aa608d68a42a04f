"""The TwiML adapter (verifier_app/voice.py) with requests signed exactly as the platform signs
them: form-encoded POSTs, the full URL with scheme and host, X-Twilio-Signature."""

from __future__ import annotations

import dataclasses
import io
import wave
import xml.etree.ElementTree as ET

from callproof import IssuedTicket
from callproof.protocol import events as ev
from callproof.protocol import states
from callproof.protocol.codes import damm_digit
from callproof.store import schema
from callproof.store.events import read_events
from callproof.voice.machine import Say
from callproof.voice.routes import Routes
from verifier_app import services

from .conftest import Line

OTHER_PHONE = "+886987654321"


def issue(line: Line, phone: str | None = "+886912345678") -> IssuedTicket:
    call = line.issuer.issue(agent_id="a-001", reason="payment_failed", phone=phone)
    line.issuer.connected(call.ticket_id)
    return call


def gather(root: ET.Element) -> ET.Element:
    found = root.find("Gather")
    assert found is not None, ET.tostring(root)
    return found


def spoken(root: ET.Element) -> str:
    return " ".join((e.text or "") for e in root.iter("Say"))


def test_a_genuine_code_names_the_agent_and_dials_them(line: Line) -> None:
    with line.app.app_context():
        Routes(services().deployment).set("a-001", transfer_target="sip:mei.lin@pbx.shop.example",
                                          queue="+886223456700")
    call = issue(line)
    menu = line.twiml("/voice/twiml/answer")
    g = gather(menu)
    assert g.get("input") == "dtmf" and g.get("numDigits") == "1"
    assert g.get("action") == "/voice/twiml/keys" and g.get("actionOnEmptyResult") == "true"
    assert [s.get("language") for s in g.iter("Say")] == ["en-US", "zh-TW", "zh-CN"]
    ask = gather(line.twiml("/voice/twiml/keys", Digits="1"))
    assert ask.get("finishOnKey") == "#" and ask.get("numDigits") == "9"
    play = ask.find("Play")
    assert play is not None and play.text and play.text.startswith(
        "https://voice.shop.example/voice/twiml/audio/")
    audio = line.client.get(play.text.removeprefix("https://voice.shop.example"))
    assert audio.status_code == 200 and audio.mimetype == "audio/wav"
    data = audio.get_data()
    audio.close()
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.getnframes() > 8000  # seconds of speech, not an empty file
    # No check word on the voice line: the network answered the phone question.
    done = line.twiml("/voice/twiml/keys", Digits=call.code)
    assert "check word" not in spoken(done)
    assert "Mei Lin" in spoken(done) and "called you at" in spoken(done)
    assert "To speak to Mei Lin again, press 1." in spoken(done)
    put = line.twiml("/voice/twiml/keys", Digits="1")
    dial = put.find("Dial")
    assert dial is not None and dial.get("action") == "/voice/twiml/dialed"
    sip = dial.find("Sip")
    assert sip is not None and sip.text == \
        f"sip:mei.lin@pbx.shop.example?X-Callproof-Ticket={call.ticket_id}"
    # The agent does not answer: the team's queue, once, then the line hangs up.
    queue = line.twiml("/voice/twiml/dialed", DialCallStatus="no-answer")
    number = queue.find("Dial/Number")
    assert number is not None and number.text == "+886223456700"
    assert line.twiml("/voice/twiml/dialed", DialCallStatus="no-answer").find("Hangup") \
        is not None
    status = line.issuer.status(call.ticket_id)
    assert status.state == states.VERIFIED
    assert ev.CALLED_BACK in [a["type"] for a in status.alerts]
    # No code, number or key in any answer the platform got (the ticket id rides only to the
    # agent's own line).
    for body in line.sent:
        assert call.code not in body and "912345678" not in body


def test_a_code_relayed_from_another_phone_fails_and_alerts(line: Line) -> None:
    call = issue(line)
    line.caller = OTHER_PHONE
    line.twiml("/voice/twiml/answer")
    line.twiml("/voice/twiml/keys", Digits="1")
    failed = line.twiml("/voice/twiml/keys", Digits=call.code)
    assert failed.find("Gather") is None and failed.find("Hangup") is not None
    assert spoken(failed).startswith("We cannot confirm this call. Hang up now.")
    status = line.issuer.status(call.ticket_id)
    assert status.state == states.FAILED
    assert [a["type"] for a in status.alerts] == [states.CAUSE_NUMBER_DENIED]
    with line.app.app_context():
        dep = services().deployment
        with dep.store.read() as conn:
            types = [e.type for e in read_events(conn, dep.issuer_id, ticket_id=call.ticket_id)]
    assert ev.NUMBER_DENIED in types


def test_guessed_codes_fail_like_the_page_and_spend_the_callers_budget(line: Line) -> None:
    call = issue(line)
    with line.app.app_context():
        dep = services().deployment
        dep.config = dataclasses.replace(dep.config, limits=dataclasses.replace(
            dep.config.limits, client_failure_limit=2))
    for n in range(2):
        line.sid = f"CA{n:032d}"
        line.twiml("/voice/twiml/answer")
        line.twiml("/voice/twiml/keys", Digits="1")
        body = f"{20_000_000 + n:08d}"
        refused = line.twiml("/voice/twiml/keys", Digits=body + damm_digit(body))
        assert spoken(refused).startswith("We cannot confirm this call.")
    with line.app.app_context(), dep.store.read() as conn:
        counted = conn.execute(schema.client_failures.select()).all()
    # The number and its block, twice each.
    assert sum(int(r._mapping["count"]) for r in counted) == 4
    line.sid = "CA" + "9" * 32
    line.twiml("/voice/twiml/answer")
    line.twiml("/voice/twiml/keys", Digits="1")
    refused = line.twiml("/voice/twiml/keys", Digits=call.code)
    assert spoken(refused).startswith("We cannot confirm this call.")
    assert line.issuer.status(call.ticket_id).state == states.CONNECTED  # not even claimed


def test_a_bad_or_missing_signature_is_refused(line: Line) -> None:
    assert line.post("/voice/twiml/answer", signature="").status_code == 403
    assert line.post("/voice/twiml/answer", signature="AAAA" * 7).status_code == 403
    # Signed for another host, or with another auth token, or the Digits changed after signing.
    line.token = "f" * 32
    refused = line.post("/voice/twiml/answer")
    assert refused.status_code == 403 and refused.get_json()["error"] == "bad_signature"
    line.token = "0123456789abcdef0123456789abcdef"
    good = line.post("/voice/twiml/answer")
    assert good.status_code == 200
    from .conftest import BASE, platform_signature

    params = {"CallSid": line.sid, "From": line.caller, "Digits": "1"}
    sig = platform_signature(line.token, BASE + "/voice/twiml/keys", params)
    tampered = line.client.post("/voice/twiml/keys", data={**params, "Digits": "2"},
                                base_url=BASE, headers={"X-Twilio-Signature": sig})
    assert tampered.status_code == 403
    other_host = line.client.post("/voice/twiml/keys", data=params,
                                  base_url="https://evil.example",
                                  headers={"X-Twilio-Signature": sig})
    assert other_host.status_code == 403
    ok = line.client.post("/voice/twiml/keys", data=params, base_url=BASE,
                          headers={"X-Twilio-Signature": sig})
    assert ok.status_code == 200 and b"/voice/twiml/audio/enter_code.en." in ok.get_data()


def test_without_an_auth_token_the_line_is_off(line: Line) -> None:
    line.app.config["TWILIO_AUTH_TOKEN"] = ""
    refused = line.post("/voice/twiml/answer")
    assert refused.status_code == 503 and refused.get_json()["error"] == "voice_off"


def test_a_withheld_number_is_told_to_call_from_the_phone_we_called(line: Line) -> None:
    line.caller = ""
    root = line.twiml("/voice/twiml/answer")
    # A static prompt: played from the cache, in each language.
    assert len(root.findall("Play")) == 3 and spoken(root) == ""
    assert root.find("Hangup") is not None and root.find("Gather") is None


def test_the_agents_console_shows_the_customer_called_back(line: Line) -> None:
    from ..web.test_console import PASSWORD, sign_in

    with line.app.app_context():
        services().passwords.set("a-001", PASSWORD)
        Routes(services().deployment).set("a-001", transfer_target="+886223456701")
    call = issue(line)
    other = issue(line, phone="+886911000333")  # another call of the agent's, not called back
    console = line.app.test_client()
    sign_in(console)
    assert "The customer called back." not in console.get("/console/").get_data(as_text=True)
    line.twiml("/voice/twiml/answer")
    line.twiml("/voice/twiml/keys", Digits="1")
    line.twiml("/voice/twiml/keys", Digits=call.code)
    put = line.twiml("/voice/twiml/keys", Digits="1")
    number = put.find("Dial/Number")
    assert number is not None and number.text == "+886223456701"
    home = console.get("/console/").get_data(as_text=True)
    assert home.count("The customer called back.") == 1
    row = next(li for li in home.split("<li>") if call.ticket_id in li)
    assert "The customer called back." in row and other.ticket_id not in row
    chinese = console.get("/console/?lang=zh-Hant").get_data(as_text=True)
    assert "顧客已回電。" in chinese
    page = console.get(f"/console/tickets/{call.ticket_id}/status.json").get_json()
    assert "The customer called back on the voice line and is being put through." in \
        [a["text"] for a in page["alerts"]]


def test_a_call_back_after_the_dialer_closed_the_ticket_is_verified_and_dialled(
        line: Line) -> None:
    with line.app.app_context():
        Routes(services().deployment).set("a-001", transfer_target="+886223456701")
    call = issue(line)
    line.issuer.close(call.ticket_id)  # the customer hung up; the dialer reported it at once
    line.clock.advance(seconds=700)  # past the page's code window, before the ticket's exp
    line.twiml("/voice/twiml/answer")
    line.twiml("/voice/twiml/keys", Digits="1")
    done = line.twiml("/voice/twiml/keys", Digits=call.code)
    assert "Yes. This is" in spoken(done) and "To speak to Mei Lin again, press 1." in \
        spoken(done)
    assert line.issuer.status(call.ticket_id).state == states.VERIFIED
    put = line.twiml("/voice/twiml/keys", Digits="1")
    number = put.find("Dial/Number")
    assert number is not None and number.text == "+886223456701"


def test_a_relayed_code_after_the_hang_up_fails_and_alerts(line: Line) -> None:
    call = issue(line)
    line.issuer.close(call.ticket_id)
    line.caller = OTHER_PHONE
    line.twiml("/voice/twiml/answer")
    line.twiml("/voice/twiml/keys", Digits="1")
    failed = line.twiml("/voice/twiml/keys", Digits=call.code)
    assert spoken(failed).startswith("We cannot confirm this call.")
    assert failed.find("Hangup") is not None
    status = line.issuer.status(call.ticket_id)
    assert status.state == states.FAILED
    assert [a["type"] for a in status.alerts] == [states.CAUSE_NUMBER_DENIED]


def test_a_ticket_without_a_number_offers_the_team_and_stays_unclaimed(line: Line) -> None:
    with line.app.app_context():
        Routes(services().deployment).set("a-001", transfer_target="+886223456701",
                                          queue="sip:billing@pbx.shop.example")
    call = issue(line, phone=None)
    line.twiml("/voice/twiml/answer")
    line.twiml("/voice/twiml/keys", Digits="3")  # 普通话
    offer = line.twiml("/voice/twiml/keys", Digits=call.code)
    # Both sentences are static: played from the cache.
    assert len(gather(offer).findall("Play")) == 2 and spoken(offer) == ""
    put = line.twiml("/voice/twiml/keys", Digits="1")
    sip = put.find("Dial/Sip")
    assert sip is not None and sip.text == \
        f"sip:billing@pbx.shop.example?X-Callproof-Ticket={call.ticket_id}"
    # The queue does not answer: it is not dialled a second time.
    assert line.twiml("/voice/twiml/dialed", DialCallStatus="no-answer").find("Hangup") \
        is not None
    assert line.issuer.status(call.ticket_id).state == states.CONNECTED


def test_a_redial_after_a_dropped_call_hears_yes_again_and_is_dialled(line: Line) -> None:
    """The customer verified, the call dropped before they pressed 1, they call again (a new
    CallSid): the same calling number is the same client — no "claimed elsewhere"."""
    with line.app.app_context():
        Routes(services().deployment).set("a-001", transfer_target="+886223456701")
    call = issue(line)
    line.twiml("/voice/twiml/answer")
    line.twiml("/voice/twiml/keys", Digits="1")
    assert "Mei Lin" in spoken(line.twiml("/voice/twiml/keys", Digits=call.code))
    line.sid = "CA" + "9" * 32  # the call dropped; a new call from the same phone
    line.twiml("/voice/twiml/answer")
    line.twiml("/voice/twiml/keys", Digits="1")
    again = line.twiml("/voice/twiml/keys", Digits=call.code)
    assert "Yes. This is" in spoken(again) and "Mei Lin" in spoken(again)
    assert "To speak to Mei Lin again, press 1." in spoken(again)
    number = line.twiml("/voice/twiml/keys", Digits="1").find("Dial/Number")
    assert number is not None and number.text == "+886223456701"
    status = line.issuer.status(call.ticket_id)  # no relay alert: only the call-back
    assert status.state == states.VERIFIED
    assert [a["type"] for a in status.alerts] == [ev.CALLED_BACK]


def test_the_audio_route_serves_fixed_prompts_only(line: Line) -> None:
    """Whatever sits in the prompt cache, only the current names of fixed prompts are served:
    a call's own sentence, an old unkeyed name or a made-up name is 404."""
    call = issue(line)
    line.twiml("/voice/twiml/answer")
    play = gather(line.twiml("/voice/twiml/keys", Digits="1")).find("Play")
    assert play is not None and play.text
    good = play.text.removeprefix("https://voice.shop.example")
    assert good.endswith(".wav") and ".en." in good  # enter_code.en.<hash>.wav
    served = line.client.get(good)
    assert served.status_code == 200
    served.close()
    with line.app.app_context():
        from verifier_app.voice import _prompts

        audio = _prompts()
        said = Say("verified", "en", "Mei Lin from Billing called you at 17:30.")
        personal = audio.wav_for(said)  # as the SIP adapter renders a call's sentence
        cache = audio.cache_dir
    planted = cache / ("ab" * 20 + ".wav")  # a name the old cache used
    planted.write_bytes(personal.read_bytes())
    try:
        for name in (planted.name, personal.name, "calls/" + personal.name,
                     "enter_code.en." + "0" * 24 + ".wav", "verified.en." + "0" * 24 + ".wav",
                     "..%2Fconfig.toml"):
            got = line.client.get("/voice/twiml/audio/" + name)
            assert got.status_code == 404, name
            got.close()
    finally:
        planted.unlink()
        personal.unlink()
    # The sentences with names in them are <Say>-ed by the platform, never <Play>-ed.
    done = line.twiml("/voice/twiml/keys", Digits=call.code)
    assert "Mei Lin" in spoken(done)
    assert all("verified" not in (p.text or "") for p in done.iter("Play"))


def test_a_sip_or_client_caller_id_is_no_number_unless_its_domain_is_trusted(
        line: Line) -> None:
    """Anyone can write ``sip:+886912345678@anything`` as a SIP caller id: it is no calling
    number (the line asks the customer to call from their phone), so a scammer cannot pass as
    the customer's phone. The platform's own SIP domain, trusted in config, is believed."""
    call = issue(line)
    for n, caller in enumerate(("sip:+886912345678@evil.example",
                                "sips:+886912345678@evil.example;user=phone",
                                "client:+886912345678", "SIP:+886912345678@evil.example")):
        line.sid, line.caller = f"CA{n:032d}", caller
        root = line.twiml("/voice/twiml/answer")
        assert root.find("Gather") is None and root.find("Hangup") is not None, caller
    assert line.issuer.status(call.ticket_id).state == states.CONNECTED
    dep = line.deployment
    dep.config = dataclasses.replace(dep.config, voice=dataclasses.replace(
        dep.config.voice, trusted_sip_domains=("sip.shop.example",)))
    line.sid, line.caller = "CA" + "7" * 32, "sip:+886912345678@evil.example"
    assert line.twiml("/voice/twiml/answer").find("Gather") is None  # still not trusted
    line.sid, line.caller = "CA" + "8" * 32, "sip:+886912345678@SIP.shop.example:5060"
    assert line.twiml("/voice/twiml/answer").find("Gather") is not None
    line.twiml("/voice/twiml/keys", Digits="1")
    assert "Mei Lin" in spoken(line.twiml("/voice/twiml/keys", Digits=call.code))
    assert line.issuer.status(call.ticket_id).state == states.VERIFIED
