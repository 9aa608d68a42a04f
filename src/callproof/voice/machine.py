"""The voice check (spec/voice-line.md): the check page's steps over the telephone keypad,
independent of any telephony product. An adapter (TwiML webhooks, SIP) speaks each
:class:`Turn`'s sentences, gathers keys as it says, and hands them back.

    >>> call = VoiceCall(dep, caller_number="+886912345678", channel="twiml")
    >>> call.start().say[0].text         # "This is the Shop call check line. For English, …"
    >>> call.keys("1").say[0].key        # 'enter_code'
    >>> call.keys("482917360").say[0].key  # 'verified': "Yes. This is … Mei Lin …"

The same lookup, claim and checks as the page run underneath (:func:`callproof.checkflow.
check_by_phone`): the claim is held by a client token derived from the calling number
(:func:`phone_token`), so a code claimed on the page cannot be checked by phone, nor the
reverse, while the same phone calling again is the same client and hears its step again; the
phone question is answered by the network (the calling number's keyed hash against the
ticket's), and no check word is asked: the
customer hung up and dialled the official number, so there is no live call to bind a word to.
A ticket the dialer closed before anyone claimed it is still checked here until it expires (the
after-the-call check); a ticket issued without a number is not claimed — the line says it cannot
be checked by phone and offers the agent's team. Every failure says the failure page's words
and hangs up. Nothing here logs or records a phone number, a code or
a key pressed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as number_zones

from callproof.checkflow import (
    NO_NUMBER,
    VERIFIED,
    CheckFlow,
    CheckStep,
    check_by_phone,
    new_client_token,
)
from callproof.deployment import Deployment
from callproof.errors import CheckFailed, CodeError, InputError
from callproof.protocol.clock import to_epoch
from callproof.scam_reports import normalise_caller_number
from callproof.voice import texts
from callproof.voice.routes import Routes, count_call
from callproof.voice.texts import LANGUAGE_KEYS, VOICE_LANGUAGES

log = logging.getLogger("callproof.voice")

#: Wrong entries, unknown keys or silences in one step before the line says goodbye.
MAX_TRIES = 3
#: Digits a call code has; ``#`` ends early, ``*`` starts again.
CODE_KEYS = 9


@dataclass(frozen=True)
class Say:
    """One thing to speak."""

    key: str  # prompt id: "choose_language", "enter_code", "verified", ...
    lang: str  # "en" | "zh-Hant" | "zh-Hans"
    text: str  # the whole sentence in that language, names and times filled in


@dataclass(frozen=True)
class Gather:
    max_digits: int
    finish_on_key: str = "#"
    timeout_seconds: int = 8


@dataclass(frozen=True)
class Transfer:
    target: str  # the agent's transfer target ("sip:…" URI or E.164); the queue when busy
    queue: str | None  # the team's queue, used when the agent is not free (or does not answer)
    ticket_id: str


@dataclass(frozen=True)
class Turn:
    say: tuple[Say, ...]
    gather: Gather | None
    transfer: Transfer | None = None
    hangup: bool = False


# The steps of a call.
LANGUAGE, CODE, OFFER, TEAM, DONE = "language", "code", "offer", "team", "done"


def caller_e164(caller_number: str | None, country: str) -> str | None:
    """The calling number as E.164, or None when the platform presents none we can use
    (withheld, "anonymous", a SIP user name, a malformed number)."""
    if not caller_number or not caller_number.strip() or len(caller_number) > 64:
        return None
    text = caller_number.strip()
    if text.lower().startswith(("sip:", "sips:", "tel:")):
        text = text.split(":", 1)[1].split("@", 1)[0].split(";", 1)[0]
    if not any(ch.isdigit() for ch in text):
        return None
    try:
        return normalise_caller_number(text, country)
    except InputError:
        return None


def number_block(e164: str) -> str:
    """The network a calling number counts in: its block of 10 000 numbers (the number without
    its last four digits), like an IPv4 /24 for addresses."""
    return "voice-block:" + e164[:-4]


def call_token(deployment: Deployment, channel: str, call_id: str) -> str:
    """The client token a platform's call claims with, derived from its call id with a key of
    the deployment's own for this purpose (nothing secret is stored between a webhook's
    requests)."""
    return deployment.hash_keys.voice_call_token(channel, call_id)


def phone_token(deployment: Deployment, e164: str) -> str:
    """The client token every call from one calling number claims with (both adapters): a
    keyed hash of the E.164 number under the hash key's voice purpose key, never stored."""
    return deployment.hash_keys.voice_call_token("phone", e164)


class VoiceCall:
    """One telephone call to the voice line: a small state machine over the check flow."""

    def __init__(self, deployment: Deployment, *, caller_number: str | None, channel: str,
                 client_key: str | None = None, call_id: str | None = None,
                 state: dict[str, Any] | None = None) -> None:
        """``caller_number`` as the platform presents it (None when withheld); ``channel``
        "sip" or "twiml"; ``client_key`` the trunk or peer the call came through, counted as
        its network (else the number's block); ``call_id`` the platform's id of the call
        (webhooks: the state of an earlier request, ``state``, resumes under it)."""
        self.dep = deployment
        self.flow = CheckFlow(deployment)
        self.routes = Routes(deployment)
        self.channel = channel
        company = deployment.config.company
        self._phone = caller_e164(caller_number, company.country)
        self._network = ("voice-trunk:" + client_key) if client_key else (
            number_block(self._phone) if self._phone else None)
        # The claim is the calling number's, on either adapter: the same phone calling again
        # (a dropped call, a hang-up before pressing 1) is the same client and gets its step
        # back, not "claimed elsewhere". A call without a number never claims (start() ends it).
        self._token = phone_token(deployment, self._phone) if self._phone else (
            call_token(deployment, channel, call_id) if call_id else new_client_token())
        s = state or {}
        self.step: str = s.get("step", LANGUAGE)
        self.lang: str = s.get("lang", "en")
        self.ticket_id: str | None = s.get("ticket_id")
        self.tries: int = int(s.get("tries", 0))
        #: The agent whose team a ticket without a number may be put through to (an id).
        self.team_agent: str | None = s.get("team_agent")
        self.started: bool = bool(s.get("started", False))
        #: The last refusal's outcome (for the adapter's log line; never a code or a number).
        self.outcome: str | None = s.get("outcome")

    def __repr__(self) -> str:
        return f"VoiceCall({self.channel!r}, step={self.step!r}, lang={self.lang!r})"

    def snapshot(self) -> dict[str, Any]:
        """The call's state for a webhook's next request: no number, code, key or token."""
        return {"step": self.step, "lang": self.lang, "ticket_id": self.ticket_id,
                "tries": self.tries, "team_agent": self.team_agent, "started": self.started,
                "outcome": self.outcome}

    # --- the adapter's three calls ---------------------------------------------------------

    def start(self) -> Turn:
        """The call is answered: the language menu, or why we cannot go on."""
        if self.started:
            return self._repeat()
        self.started = True
        if self._phone is None:  # withheld: the network cannot answer the phone question
            return self._end_all("withheld", "withheld")
        limit = self.dep.config.voice.calls_per_number_hour
        with self.dep.store.write() as conn:
            ok = count_call(self.dep, conn, "phone:" + self._phone, limit,
                            to_epoch(self.dep.now()))
        if not ok:
            return self._end_all("too_many_calls", "too_many_calls")
        return self._language_menu()

    def keys(self, digits: str) -> Turn:
        """What the gather collected: "1", "482917360", "*", "48*" …"""
        digits = (digits or "").strip()[:64]
        if self.step == DONE:
            return Turn((), None, hangup=True)
        if not digits.rstrip("#"):
            return self.silence()
        if self.step == LANGUAGE:
            lang = LANGUAGE_KEYS.get(digits.rstrip("#"))
            if lang is None:
                return self._again("not_a_choice", self._language_menu)
            self.lang, self.step, self.tries = lang, CODE, 0
            return self._ask_code()
        if self.step == CODE:
            return self._code(digits)
        if self.step == TEAM:
            return self._team(digits.rstrip("#"))
        return self._offer(digits.rstrip("#"))

    def silence(self) -> Turn:
        """The gather timed out with nothing: say it again, at most a few times."""
        if self.step == DONE:
            return Turn((), None, hangup=True)
        self.tries += 1
        if self.tries >= MAX_TRIES or self.step in (OFFER, TEAM):
            return self._goodbye()
        return self._repeat()

    # --- the steps -------------------------------------------------------------------------

    def _say(self, key: str, lang: str | None = None, **fields: str) -> Say:
        lang = lang or self.lang
        return Say(key, lang, texts.text(key, lang, **fields))

    def _company(self, lang: str | None = None) -> str:
        return self.dep.config.company.name_in(lang or self.lang)

    def _number(self, lang: str | None = None) -> str:
        return texts.spoken_digits(self.dep.config.company.official_number, lang or self.lang)

    def _language_menu(self) -> Turn:
        self.step = LANGUAGE
        return Turn(tuple(self._say("choose_language", lang, company=self._company(lang))
                          for lang in VOICE_LANGUAGES), Gather(1, finish_on_key=""))

    def _ask_code(self, *before: Say) -> Turn:
        return Turn((*before, self._say("enter_code")),
                    Gather(CODE_KEYS, finish_on_key="#", timeout_seconds=15))

    def _repeat(self) -> Turn:
        if self.step == LANGUAGE:
            return self._language_menu()
        if self.step == CODE:
            return self._ask_code()
        if self.step == TEAM:
            return self._team_menu()
        if self.step == OFFER:
            return self._offer_menu()
        return Turn((), None, hangup=True)

    def _again(self, key: str, then: Any) -> Turn:
        """A wrong key: say so, then the question again (or goodbye after a few)."""
        self.tries += 1
        if self.tries >= MAX_TRIES:
            return self._goodbye()
        turn: Turn = then()
        return Turn((self._say(key), *turn.say), turn.gather)

    def _code(self, digits: str) -> Turn:
        if "*" in digits:  # start again (anything typed before it is dropped)
            self.tries += 1
            if self.tries >= MAX_TRIES + 2:
                return self._goodbye()
            return self._ask_code(self._say("start_again"))
        try:
            step = check_by_phone(self.flow, digits.rstrip("#"), self._token,
                                  self._phone or "",  # start() ends a call without a number
                                  client_key="voice-phone:" + str(self._phone),
                                  network_key=self._network)
        except CodeError as e:  # not a failed lookup: the customer keys the code again
            self.tries += 1
            if self.tries >= MAX_TRIES:
                return self._goodbye()
            return self._ask_code(self._say("code_typo" if e.reason == "typo" else "code_format"))
        except CheckFailed as e:
            return self._failed(e)
        self.ticket_id, self.tries = step.ticket_id, 0
        if step.step == NO_NUMBER:
            return self._no_number(step)
        if step.step == VERIFIED:
            return self._verified(step)
        return self._failed(CheckFailed("wrong_step", "unexpected step"))  # pragma: no cover

    def _agent_name(self, step: CheckStep | None = None) -> str:
        if step is None:
            step = self.flow.current_step(self._ticket(), self._token)
        names = getattr(step, "agent_names", None) or {}
        name = names.get(self.lang) if isinstance(names, dict) else None
        return name or step.ticket.agent_name

    # --- a ticket issued without a number: not checkable by phone --------------------------

    def _no_number(self, step: CheckStep) -> Turn:
        """The network cannot answer the phone question: the ticket is not claimed (it stays
        checkable on the page); the line says so and offers the agent's team, if it has one."""
        self.outcome = "no_number"
        self.team_agent = step.ticket.agent_id
        log.info("voice check not possible: channel=%s outcome=no_number ticket=%s",
                 self.channel, step.ticket_id)
        said = self._say("no_phone_check")
        team = self._team_menu()
        return Turn((said, *team.say), team.gather, hangup=team.hangup)

    def _team_queue(self) -> str | None:
        return self.routes.get(self.team_agent).queue if self.team_agent else None

    def _team_menu(self) -> Turn:
        if self._team_queue() is None:
            self.step = DONE
            return Turn((self._say("no_phone_advice", number=self._number()),), None,
                        hangup=True)
        self.step = TEAM
        return Turn((self._say("offer_team"),), Gather(1, finish_on_key="", timeout_seconds=8))

    def _team(self, digits: str) -> Turn:
        queue = self._team_queue()
        self.step = DONE
        if digits != "1" or queue is None or self.ticket_id is None:
            return Turn((self._say("thanks"),), None, hangup=True)
        # Not a verified customer: the team hears the call-back as unchecked.
        self.routes.called_back(self.ticket_id, to="queue", channel="voice", checked=False)
        log.info("voice call put through: channel=%s to=team ticket=%s", self.channel,
                 self.ticket_id)
        return Turn((self._say("transferring_team"),), None,
                    transfer=Transfer(target=queue, queue=queue, ticket_id=self.ticket_id))

    def _verified(self, step: CheckStep) -> Turn:
        self.step, self.tries = OFFER, 0
        lang = self.lang
        ticket = step.ticket
        agent = self._agent_name(step)
        departments = getattr(step, "department_names", None) or {}
        department = (departments.get(lang) if isinstance(departments, dict) else None) or \
            ticket.department
        reason = step.reason.text.get(lang, step.reason.text["en"]) if step.reason else \
            ticket.reason
        reason = reason.strip().rstrip(".。")  # the sentence ends with the template's own stop
        fields = {"company": self._company(), "agent": agent, "reason": reason,
                  "time": self._time(ticket.iat)}
        said = self._say("verified", department=department, **fields) if department else \
            self._say("verified_no_department", **fields)
        offer = self._offer_menu(agent)
        if offer.gather is None:
            return Turn((said, self._say("thanks")), None, hangup=True)
        return Turn((said, *offer.say), offer.gather)

    def _time(self, epoch: int) -> str:
        """The ticket's time in the company's time zone (from its official number)."""
        zone: Any = UTC
        company = self.dep.config.company
        try:
            candidates = [phonenumbers.parse(company.official_number, company.country)]
        except phonenumbers.NumberParseException:
            candidates = []
        example = phonenumbers.example_number(company.country)  # the country's zone otherwise
        if example is not None:
            candidates.append(example)
        for number in candidates:
            names = [z for z in number_zones.time_zones_for_number(number)
                     if "/" in z and not z.startswith("Etc/")]
            if names:
                try:
                    zone = ZoneInfo(names[0])
                except ZoneInfoNotFoundError:
                    continue
                break
        when = datetime.fromtimestamp(epoch, UTC).astimezone(zone)
        return texts.spoken_time(when.hour, when.minute, self.lang)

    def _offer_menu(self, agent: str | None = None) -> Turn:
        try:
            route = self.routes.get(self._ticket_agent())
            if not (route.transfer_target or route.queue):
                return Turn((), None)
            agent = agent or self._agent_name()
        except CheckFailed as e:
            return self._failed(e)
        return Turn((self._say("offer_transfer", agent=agent),),
                    Gather(1, finish_on_key="", timeout_seconds=8))

    def _ticket(self) -> str:
        """The ticket this call claimed (CheckFailed when there is none: a step out of turn)."""
        if self.ticket_id is None:
            raise CheckFailed("not_claimed", "this call has not checked a code")
        return self.ticket_id

    def _ticket_agent(self) -> str:
        return self.flow.current_step(self._ticket(), self._token).ticket.agent_id

    def _offer(self, digits: str) -> Turn:
        if digits != "1":
            self.step = DONE
            return Turn((self._say("thanks"),), None, hangup=True)
        try:
            step = self.flow.current_step(self._ticket(), self._token)
        except CheckFailed as e:
            return self._failed(e)
        agent_id = step.ticket.agent_id
        route = self.routes.get(agent_id)
        busy = self.routes.agent_busy(agent_id, step.ticket_id)
        to_queue = route.queue is not None and (busy or route.transfer_target is None)
        target = route.queue if to_queue else route.transfer_target
        if target is None:  # pragma: no cover - _offer_menu offers only with a route
            return self._goodbye()
        self.routes.called_back(step.ticket_id, to="queue" if to_queue else "agent",
                                channel="voice")
        self.step = DONE
        agent = self._agent_name(step)
        said = self._say("transferring_queue" if to_queue else "transferring", agent=agent)
        log.info("voice call put through: channel=%s to=%s ticket=%s", self.channel,
                 "queue" if to_queue else "agent", step.ticket_id)
        return Turn((said,), None, transfer=Transfer(target=target, queue=route.queue,
                                                     ticket_id=step.ticket_id))

    # --- endings ---------------------------------------------------------------------------

    def _failed(self, e: CheckFailed) -> Turn:
        """Every failure: the failure page's words, and hang up."""
        self.step, self.outcome = DONE, e.outcome
        log.info("voice check failed: channel=%s outcome=%s ticket=%s", self.channel,
                 e.outcome, e.ticket_id or "-")
        company = self.dep.config.company
        return Turn((self._say("failed", number=self._number(),
                               hotline=texts.spoken_digits(company.hotline, self.lang)),),
                    None, hangup=True)

    def _end_all(self, key: str, outcome: str) -> Turn:
        """Before a language is chosen: say it in each language, and hang up."""
        self.step, self.outcome = DONE, outcome
        log.info("voice call refused: channel=%s outcome=%s", self.channel, outcome)
        return Turn(tuple(self._say(key, lang, company=self._company(lang),
                                    number=self._number(lang)) for lang in VOICE_LANGUAGES),
                    None, hangup=True)

    def _goodbye(self) -> Turn:
        """No (usable) answer: the safe advice, and hang up (in every language before one was
        chosen)."""
        langs = VOICE_LANGUAGES if self.step == LANGUAGE else (self.lang,)
        self.step, self.outcome = DONE, self.outcome or "no_answer"
        return Turn(tuple(self._say("goodbye", lang, number=self._number(lang))
                          for lang in langs), None, hangup=True)
