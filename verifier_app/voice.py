"""The voice line's TwiML adapter (spec/voice-line.md §6): webhooks for hosted voice platforms
that speak TwiML (Twilio and the look-alikes), over :class:`callproof.voice.machine.VoiceCall`.

POST /voice/twiml/answer   the platform's "a call comes in" webhook: the language menu
POST /voice/twiml/keys     a ``<Gather>``'s action (``Digits``; empty after a silence)
POST /voice/twiml/dialed   a ``<Dial>``'s action: the agent did not answer → the team's queue
GET  /voice/twiml/audio/<key>.<lang>.<hash>.wav   a fixed prompt's cached audio, for ``<Play>``

Every POST must carry the platform's ``X-Twilio-Signature`` over the URL it called and the form
(checked with the ``twilio`` package's ``RequestValidator`` and the auth token from
``CALLPROOF_TWILIO_AUTH_TOKEN``): else 403, and without a token configured 503 — the line is off.
A call's state lives in the database by the keyed hash of its ``CallSid``, never in a URL; its
claim token is the calling number's (:func:`callproof.voice.machine.phone_token`), so a redial
from the same phone is the same client. A ``sip:``/``client:`` ``From`` is no calling number
unless its domain is in ``[voice] trusted_sip_domains`` (:func:`platform_caller`).
Fixed prompts are ``<Play>``ed from the cache (the company's recordings or espeak-ng) and the
audio route serves nothing else; a sentence with names or times in it is ``<Say>``-ed by the
platform, so no audio of a customer's call sits at a URL. Nothing here logs a number, a code or
a key pressed.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    jsonify,
    request,
    send_file,
    url_for,
)

from callproof.voice.machine import Say, Transfer, Turn, VoiceCall
from callproof.voice.prompts import PromptAudio
from callproof.voice.routes import CallStates

from .extensions import services

bp = Blueprint("voice", __name__, url_prefix="/voice/twiml")
log = logging.getLogger("callproof.voice")

#: ``<Say language>`` per prompt language (Taiwan and mainland Mandarin voices).
SAY_LANGUAGES = {"en": "en-US", "zh-Hant": "zh-TW", "zh-Hans": "zh-CN"}
#: Seconds the agent's line rings before the call goes to the team's queue.
DIAL_TIMEOUT = 20
_CALL_SID = re.compile(r"[A-Za-z0-9]{10,64}")


def _json_error(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": code, "message": message})
    response.status_code = status
    return response


def _auth_token() -> str:
    return str(current_app.config.get("TWILIO_AUTH_TOKEN") or
               os.environ.get("CALLPROOF_TWILIO_AUTH_TOKEN", ""))


def _prompts() -> PromptAudio:
    found = current_app.extensions.get("callproof.voice_prompts")
    if found is None:
        dep = services().deployment
        cache = current_app.config.get("VOICE_PROMPT_CACHE") or dep.data_dir.path / "voice-cache"
        recorded = dep.config.voice.recorded_prompts
        found = PromptAudio(Path(cache), dep.data_dir.path / recorded if recorded else None)
        current_app.extensions["callproof.voice_prompts"] = found
    return found


@bp.before_request
def _check_signature() -> Response | None:
    """The platform's signature over the URL it called and the form: 403 if wrong or absent."""
    if request.method != "POST":
        return None
    token = _auth_token()
    if not token:
        return _json_error(503, "voice_off", "The voice line has no platform auth token "
                                             "(CALLPROOF_TWILIO_AUTH_TOKEN).")
    from twilio.request_validator import RequestValidator

    signature = request.headers.get("X-Twilio-Signature", "")
    params = request.form.to_dict(flat=True)
    if not signature or not RequestValidator(token).validate(request.url, params, signature):
        log.warning("voice webhook refused: bad signature")
        return _json_error(403, "bad_signature", "The request signature does not verify.")
    if not _CALL_SID.fullmatch(request.form.get("CallSid", "")):
        return _json_error(400, "bad_request", "CallSid is missing or malformed.")
    return None


def platform_caller(value: str | None, trusted_domains: tuple[str, ...]) -> str | None:
    """The calling number as the platform presents it in ``From``: a telephone number as is;
    a ``sip:``/``sips:`` URI only from a SIP domain config trusts (``[voice]
    trusted_sip_domains``: the platform's own SIP domain, whose caller ids it vouches for),
    else no number — anyone can write ``sip:+8869…@anything`` as a SIP caller id; a
    ``client:`` (an app user of the platform) is never a number."""
    text = (value or "").strip()
    scheme = text.split(":", 1)[0].lower() if ":" in text else ""
    if scheme == "client":
        return None
    if scheme in ("sip", "sips"):
        host = text.split("@", 1)[1] if "@" in text else ""
        host = host.split(";", 1)[0].split("?", 1)[0].split(":", 1)[0].lower()
        if not host or host not in {d.lower() for d in trusted_domains}:
            return None
    return text or None


def _call(state: dict[str, Any] | None = None) -> VoiceCall:
    dep = services().deployment
    caller = platform_caller(request.form.get("From"), dep.config.voice.trusted_sip_domains)
    return VoiceCall(dep, caller_number=caller, channel="twiml",
                     call_id=request.form["CallSid"], state=state)


def _twiml(turn: Turn, call: VoiceCall) -> Response:
    from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

    response = VoiceResponse()
    if turn.gather is not None:
        g = turn.gather
        gather = Gather(input="dtmf", num_digits=g.max_digits, finish_on_key=g.finish_on_key,
                        timeout=g.timeout_seconds, action=url_for("voice.keys"), method="POST",
                        action_on_empty_result=True)
        for say in turn.say:
            _speak(gather, say)
        response.append(gather)
    else:
        for say in turn.say:
            _speak(response, say)
    if turn.transfer is not None:
        dial = Dial(action=url_for("voice.dialed"), method="POST", timeout=DIAL_TIMEOUT)
        _dial_to(dial, turn.transfer.target, turn.transfer)
        response.append(dial)
    elif turn.hangup or turn.gather is None:
        response.hangup()
    body = str(response)
    state = call.snapshot()
    if turn.transfer is not None:
        state["dial"] = {"target": turn.transfer.target, "queue": turn.transfer.queue,
                         "ticket_id": turn.transfer.ticket_id}
    CallStates(services().deployment).save(request.form["CallSid"], state)
    return Response(body, mimetype="text/xml")


def _speak(parent: Any, say: Say) -> None:
    """A static prompt is played from the cache; a sentence with names in it is said."""
    prompts = _prompts()
    if prompts.is_static(say):
        name = prompts.wav_for(say).name
        parent.play(url_for("voice.audio", name=name, _external=True))
    else:
        parent.say(say.text, language=SAY_LANGUAGES.get(say.lang, "en-US"))


def _dial_to(dial: Any, target: str, transfer: Transfer) -> None:
    """Dial a SIP URI (the ticket id in an ``X-Callproof-Ticket`` header) or an E.164 number."""
    if target.startswith(("sip:", "sips:")):
        joiner = "&" if "?" in target else "?"
        dial.sip(f"{target}{joiner}X-Callproof-Ticket={transfer.ticket_id}")
    else:
        dial.number(target)


@bp.post("/answer")
def answer() -> Response:
    """A call comes in: the language menu (or why the line cannot go on)."""
    call = _call()
    return _twiml(call.start(), call)


@bp.post("/keys")
def keys() -> Response:
    """What the caller keyed (``Digits``), or nothing after a silence."""
    state = CallStates(services().deployment).load(request.form["CallSid"])
    if state is None:  # a call we do not know (or long over): start it afresh
        call = _call()
        return _twiml(call.start(), call)
    call = _call(state)
    digits = request.form.get("Digits", "")
    turn = call.keys(digits) if digits else call.silence()
    return _twiml(turn, call)


@bp.post("/dialed")
def dialed() -> Response:
    """The agent's line did not answer (busy, no answer, failed): the team's queue, once."""
    from twilio.twiml.voice_response import Dial, VoiceResponse

    store = CallStates(services().deployment)
    state = store.load(request.form["CallSid"]) or {}
    dial = state.get("dial") or {}
    response = VoiceResponse()
    status = request.form.get("DialCallStatus", "")
    queue = dial.get("queue")
    if status != "completed" and queue and queue != dial.get("target"):
        again = Dial(action=url_for("voice.dialed"), method="POST")
        _dial_to(again, queue, Transfer(target=queue, queue=None, ticket_id=dial["ticket_id"]))
        response.append(again)
        store.save(request.form["CallSid"], {**state, "dial": {**dial, "target": queue}})
    else:
        response.hangup()
    return Response(str(response), mimetype="text/xml")


@bp.get("/audio/<name>")
def audio(name: str) -> Response:
    """A fixed prompt's audio (8 kHz mono WAV) from the cache, for the platform's ``<Play>``:
    only the current name of a fixed prompt is served (404 for anything else, whatever else
    the cache folder may hold), so nothing of a customer's call is ever at a URL."""
    path = _prompts().static_name(name)
    if path is None:
        abort(404)
    return send_file(path, mimetype="audio/wav", max_age=86400)


def init_app(app: Flask) -> None:
    """Register the adapter: its webhooks carry the platform's signature, not a CSRF token."""
    from .extensions import csrf

    app.register_blueprint(bp)
    csrf.exempt(bp)

    @app.context_processor
    def _voice_line() -> dict[str, str]:
        """The voice line's number for the pages that name it beside the web address."""
        return {"voice_number": services().deployment.config.voice.number}
