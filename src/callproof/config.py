"""The data dir and its configuration.

A data dir holds everything one deployment needs on one machine::

    callproof-data/
      config.toml          issuer id, company profile, limits (written by `callproof init`)
      callproof.db         the SQLite store (unless CALLPROOF_DATABASE_URL points elsewhere)
      keys/<kid>.pem       before ADR 0011 only: copied into the database on first use
      keys/log.key         the audit log's checkpoint signing key (PEM, encrypted the same way)
      log/checkpoint       the latest signed checkpoint, kept outside the database too
      secrets/hash.key     the keyed-hash secret (or CALLPROOF_HASH_KEY in the environment)
      secrets/seal.key     demo only: the key sealing enrolled proofs (else CALLPROOF_SEAL_KEY)
      secrets/webhook.secret  the alert webhook's signing secret, "whsec_…" (or
                           CALLPROOF_WEBHOOK_SECRET; made by `callproof desk webhook-secret`)

Environment: ``CALLPROOF_DATA_DIR``, ``CALLPROOF_DATABASE_URL``, ``CALLPROOF_KEY_PASSPHRASE``,
``CALLPROOF_HASH_KEY`` and ``CALLPROOF_SEAL_KEY`` (base64url of 32 bytes each),
``CALLPROOF_WEBHOOK_SECRET`` (``whsec_`` and base64 of 32 bytes).

    >>> config = DataDir("callproof-data").load()
    >>> config.limits.code_window
    datetime.timedelta(seconds=600)
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import TZPATH, ZoneInfo, ZoneInfoNotFoundError

from callproof._files import write_private
from callproof.errors import ConfigError

#: ``[voice] transfer_allowed`` entries: a SIP domain (any user at it; an optional port pins
#: it) or an E.164 prefix (at least the country code and one more digit).
_DOMAIN = re.compile(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                     r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")
_ALLOWED_SIP = re.compile(r"sips?:\*@" + _DOMAIN.pattern + r"(?::[0-9]{1,5})?")
_ALLOWED_PREFIX = re.compile(r"\+[1-9][0-9]{1,14}")

DEFAULT_DATA_DIR = "./callproof-data"


@dataclass(frozen=True)
class Company:
    """What customers are told about the company (the check pages and notice cards use it)."""

    name: str
    official_number: str
    check_page: str
    country: str = "TW"
    hotline: str = "165"
    #: A PNG, JPEG or SVG file in the data dir shown at the top of every page ("" for none).
    logo: str = ""
    #: The company's name in Traditional (Taiwan) and Simplified (mainland) Chinese, shown on
    #: pages in those languages; "" shows ``name`` there too.
    name_zh_hant: str = ""
    name_zh_hans: str = ""
    #: The company's time zone (an IANA name such as "Asia/Taipei"): the fraud desk shows times
    #: in it. "" takes the main zone of ``country`` (the system's zone.tab), else UTC.
    time_zone: str = ""

    @property
    def zone(self) -> ZoneInfo:
        """The company's time zone (``time_zone``, else the main one of ``country``)."""
        name = self.time_zone or zone_of_country(self.country)
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ConfigError(f"config.toml: [company] time_zone {name!r} is not a known IANA "
                              "time zone (e.g. Asia/Taipei)") from e

    def name_in(self, lang: str) -> str:
        """The company's name in ``lang`` (a BCP 47 tag), or ``name`` when there is none."""
        names = {"zh-Hant": self.name_zh_hant, "zh-Hans": self.name_zh_hans}
        found = names.get(lang, "")
        return found.strip() if isinstance(found, str) and found.strip() else self.name


@dataclass(frozen=True)
class Limits:
    """Protocol and abuse limits; every one has a spec'd default and can be set in config.toml."""

    code_window_seconds: int = 600
    default_ttl_seconds: int = 900
    max_ttl_seconds: int = 1800
    min_ttl_seconds: int = 60
    clock_skew_seconds: int = 60
    word_choices: int = 6
    client_failure_limit: int = 30
    client_window_seconds: int = 900
    #: Failed lookups one network (IPv4 /24, IPv6 /48) may make in the client window: so that one
    #: network cannot spend the deployment's budget alone (spec §10).
    network_failure_limit: int = 300
    global_failure_budget: int = 600
    breaker_cooldown_seconds: int = 300
    reveals_per_agent_hour: int = 20
    reveals_per_customer_hour: int = 3
    #: Days a scam report's free text is kept (the number and scripts stay for the police facts).
    report_text_days: int = 30
    #: Scam reports one client address, and one network (IPv4 /24, IPv6 /48), may file an hour.
    reports_per_address_hour: int = 5
    reports_per_network_hour: int = 30
    #: Failed staff sign-ins (console and fraud desk, each on its own) in the window
    #: ``sign_in_window_seconds``: per client address *and* account id (one person's typos do
    #: not lock out a call centre behind one NAT address), per client address whatever the
    #: account (password spraying), and per account whatever the address (guessing one password
    #: from many addresses). Counted in the database: every worker and instance sees one count.
    sign_in_failures_per_address_and_account: int = 10
    sign_in_failures_per_address: int = 50
    sign_in_failures_per_account: int = 10
    sign_in_window_seconds: int = 900
    #: Days a network (IPv4 /24, IPv6 /48) an account signed in from stays known for it: from
    #: a known network the per-account limit does not refuse (the address limits still do), so
    #: that someone who knows an agent's id cannot lock the agent out of their own office.
    sign_in_known_network_days: int = 30
    #: Tickets one agent may start on the console a minute (the API has its own per-agent limit).
    console_tickets_per_agent_minute: int = 10

    @property
    def code_window(self) -> timedelta:
        return timedelta(seconds=self.code_window_seconds)

    @property
    def skew(self) -> timedelta:
        return timedelta(seconds=self.clock_skew_seconds)

    def check(self) -> None:
        if not 60 <= self.min_ttl_seconds <= self.default_ttl_seconds <= self.max_ttl_seconds \
                <= 1800:
            raise ConfigError("ticket lifetimes must satisfy 60 ≤ min ≤ default ≤ max ≤ 1800 s")
        if not 60 <= self.code_window_seconds <= self.max_ttl_seconds:
            raise ConfigError("the code window must be between 60 s and the longest lifetime")
        if not 4 <= self.word_choices <= 6:
            raise ConfigError("word_choices must be between 4 and 6")
        if not 0 <= self.clock_skew_seconds <= 300:
            raise ConfigError("clock_skew_seconds must be between 0 and 300")
        if min(self.client_failure_limit, self.network_failure_limit, self.global_failure_budget,
               self.client_window_seconds, self.breaker_cooldown_seconds,
               self.reveals_per_agent_hour, self.reveals_per_customer_hour,
               self.report_text_days, self.reports_per_address_hour,
               self.reports_per_network_hour, self.sign_in_failures_per_address_and_account,
               self.sign_in_failures_per_address, self.sign_in_failures_per_account,
               self.sign_in_window_seconds, self.sign_in_known_network_days,
               self.console_tickets_per_agent_minute) < 1:
            raise ConfigError("failure limits must be positive")


#: Hosts a plain-http webhook may name: only this machine (tests, a local relay).
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Alerts:
    """Where fraud-desk alerts are pushed (spec/fraud-desk.md §webhook); "" for nowhere."""

    webhook_url: str = ""

    def check(self) -> None:
        if not isinstance(self.webhook_url, str):
            raise ConfigError("config.toml: [alerts] webhook_url must be a string")
        if not self.webhook_url:
            return
        try:
            url = urlsplit(self.webhook_url)
            host, _port = url.hostname, url.port  # .port raises on a bad port
        except ValueError as e:
            raise ConfigError(f"config.toml: [alerts] webhook_url is not a URL: {e}") from e
        local = url.scheme == "http" and host in _LOCAL_HOSTS
        if url.scheme != "https" and not local:
            raise ConfigError("config.toml: [alerts] webhook_url must be an https:// URL "
                              "(http:// only for 127.0.0.1 or localhost)")
        if not host or not self.webhook_url.isprintable() or " " in self.webhook_url:
            raise ConfigError("config.toml: [alerts] webhook_url needs a host and no spaces")
        if url.username is not None or url.password is not None or url.fragment:
            raise ConfigError("config.toml: [alerts] webhook_url must not hold a user, a "
                              "password or a #fragment: the receiver checks the signature")

    @property
    def webhook_host(self) -> str | None:
        """The webhook's host alone (the URL's path or query may hold a receiver's token)."""
        return urlsplit(self.webhook_url).hostname if self.webhook_url else None


@dataclass(frozen=True)
class Voice:
    """The voice line (spec/voice-line.md): the number customers call to check a call by phone
    ("" for none: the notice card and the pages then name only the web address)."""

    number: str = ""
    #: Calls one calling number may make to the voice line in an epoch hour.
    calls_per_number_hour: int = 10
    #: Folder (in the data dir, or absolute) of the company's recorded prompts,
    #: ``<key>.<lang>.wav``; "" for speech rendered by espeak-ng only.
    recorded_prompts: str = ""
    #: Where a verified customer may be put back through to (spec/voice-line.md §4): SIP
    #: domains as ``sip:*@pbx.shop.example`` (any user there; a port in the entry pins it) and
    #: E.164 prefixes as ``+8862``. Empty: no transfer target or queue can be set.
    transfer_allowed: tuple[str, ...] = ()
    #: SIP domains of the voice platform whose ``sip:`` caller ids the TwiML adapter trusts as
    #: the calling number (``pbx.shop.example``); empty: a ``sip:``/``client:`` From is no number.
    trusted_sip_domains: tuple[str, ...] = ()

    def check(self) -> None:
        if not isinstance(self.number, str) or len(self.number) > 32 or \
                not self.number.isprintable():
            raise ConfigError("config.toml: [voice] number must be a phone number as printed")
        if type(self.calls_per_number_hour) is not int or self.calls_per_number_hour < 1:
            raise ConfigError("config.toml: [voice] calls_per_number_hour must be positive")
        if not isinstance(self.recorded_prompts, str):
            raise ConfigError("config.toml: [voice] recorded_prompts must be a folder name")
        for entry in self.transfer_allowed:
            if not isinstance(entry, str) or not (_ALLOWED_SIP.fullmatch(entry) or
                                                   _ALLOWED_PREFIX.fullmatch(entry)):
                raise ConfigError(
                    "config.toml: [voice] transfer_allowed must list SIP domains "
                    "(\"sip:*@pbx.shop.example\") and E.164 prefixes (\"+8862\")")
        for domain in self.trusted_sip_domains:
            if not isinstance(domain, str) or not _DOMAIN.fullmatch(domain):
                raise ConfigError("config.toml: [voice] trusted_sip_domains must list domain "
                                  "names (\"sip.shop.example\")")


@dataclass(frozen=True)
class Config:
    issuer_id: str
    company: Company
    limits: Limits
    database_url: str
    alerts: Alerts = Alerts()
    voice: Voice = Voice()


class DataDir:
    """The paths of a data dir; :meth:`load` reads its config."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path or os.environ.get("CALLPROOF_DATA_DIR") or DEFAULT_DATA_DIR)

    def __repr__(self) -> str:
        return f"DataDir({str(self.path)!r})"

    @property
    def config_file(self) -> Path:
        return self.path / "config.toml"

    @property
    def keys_dir(self) -> Path:
        return self.path / "keys"

    @property
    def hash_key_file(self) -> Path:
        return self.path / "secrets" / "hash.key"

    @property
    def webhook_secret_file(self) -> Path:
        return self.path / "secrets" / "webhook.secret"

    def key_file(self, kid: str) -> Path:
        return self.keys_dir / f"{kid}.pem"

    @property
    def log_key_file(self) -> Path:
        return self.keys_dir / "log.key"

    @property
    def log_checkpoint_file(self) -> Path:
        return self.path / "log" / "checkpoint"

    def exists(self) -> bool:
        return self.config_file.is_file()

    def database_url(self) -> str:
        url = os.environ.get("CALLPROOF_DATABASE_URL")
        return url or f"sqlite:///{(self.path / 'callproof.db').resolve()}"

    def load(self) -> Config:
        """Read config.toml. Raises :class:`ConfigError` naming the file and the problem."""
        if not self.exists():
            raise ConfigError(f"no callproof data dir at {self.path}: run `callproof init`")
        try:
            raw = tomllib.loads(self.config_file.read_text("utf-8"))
            return Config(
                issuer_id=_required(raw, "issuer_id"),
                company=_company(raw),
                limits=_limits(raw),
                database_url=self.database_url(),
                alerts=_alerts(raw),
                voice=_voice(raw),
            )
        except (tomllib.TOMLDecodeError, TypeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{self.config_file}: {e}") from e

    def hash_key(self) -> bytes:
        """The keyed-hash secret: CALLPROOF_HASH_KEY, else secrets/hash.key."""
        env = os.environ.get("CALLPROOF_HASH_KEY")
        if env:
            try:
                key = base64.urlsafe_b64decode(env + "=" * (-len(env) % 4))
            except (binascii.Error, ValueError) as e:
                raise ConfigError("CALLPROOF_HASH_KEY is not base64url") from e
        else:
            try:
                key = self.hash_key_file.read_bytes()
            except OSError as e:
                raise ConfigError(f"cannot read {self.hash_key_file}: set CALLPROOF_HASH_KEY "
                                  "or run `callproof init`") from e
        if len(key) != 32:
            raise ConfigError("the hash key must be 32 bytes")
        return key

    def write_hash_key(self, key: bytes) -> None:
        self.hash_key_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(self.hash_key_file, key)


def zone_of_country(country: str) -> str:
    """The first zone ``zone.tab`` lists for ``country`` (ISO 3166 alpha-2) — its main one, as
    "Asia/Taipei" for TW, "Asia/Shanghai" for CN — or "UTC" when none is found."""
    code = str(country).strip().upper()
    for base in TZPATH:
        try:
            lines = (Path(base) / "zone.tab").read_text("utf-8").splitlines()
        except OSError:
            continue
        for line in lines:
            parts = line.split("\t")
            if len(parts) >= 3 and parts[0] == code:
                return parts[2]
    return "UTC"


def passphrase() -> bytes | None:
    """CALLPROOF_KEY_PASSPHRASE, or None (demo: keys are then written unencrypted)."""
    value = os.environ.get("CALLPROOF_KEY_PASSPHRASE")
    return value.encode("utf-8") if value else None


def _required(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value or len(value) > 255 or not value.isprintable():
        raise ConfigError(f"config.toml: `{name}` must be 1–255 printable characters")
    return value


def _section(raw: Mapping[str, Any], name: str, cls: type) -> dict[str, Any]:
    section = raw.get(name, {})
    if not isinstance(section, dict):
        raise ConfigError(f"config.toml: [{name}] must be a table")
    known = {f.name for f in fields(cls)}
    unknown = set(section) - known
    if unknown:
        raise ConfigError(f"config.toml: unknown setting(s) in [{name}]: {sorted(unknown)}")
    missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in section]
    if missing:
        raise ConfigError(f"config.toml: [{name}] needs {', '.join(missing)}")
    return section


def _company(raw: Mapping[str, Any]) -> Company:
    company = Company(**_section(raw, "company", Company))
    if not isinstance(company.time_zone, str):
        raise ConfigError("config.toml: [company] time_zone must be a string")
    _ = company.zone  # an unknown zone fails at load, naming the setting
    return company


def _alerts(raw: Mapping[str, Any]) -> Alerts:
    alerts = Alerts(**_section(raw, "alerts", Alerts))
    alerts.check()
    return alerts


def _voice(raw: Mapping[str, Any]) -> Voice:
    section = dict(_section(raw, "voice", Voice))
    for name in ("transfer_allowed", "trusted_sip_domains"):
        if name in section:
            if not isinstance(section[name], list):
                raise ConfigError(f"config.toml: [voice] {name} must be a list")
            section[name] = tuple(section[name])
    voice = Voice(**section)
    voice.check()
    return voice


def _limits(raw: Mapping[str, Any]) -> Limits:
    section = _section(raw, "limits", Limits)
    for key, value in section.items():
        if type(value) is not int:
            raise ConfigError(f"config.toml: [limits] {key} must be a whole number")
    limits = Limits(**section)
    limits.check()
    return limits


DEMO_CONFIG = """\
# callproof configuration. Written by `callproof init`; edit freely.
# Secrets are not kept here: see CALLPROOF_KEY_PASSPHRASE and CALLPROOF_HASH_KEY.

issuer_id = "{issuer_id}"

[company]
name = "{name}"
official_number = "{official_number}"
check_page = "{check_page}"
country = "{country}"
hotline = "{hotline}"
# name_zh_hant = "…"            # the name on pages in Traditional Chinese (default: name)
# name_zh_hans = "…"            # the name on pages in Simplified Chinese (default: name)
# logo = "logo.png"             # a PNG, JPEG or SVG file in this data dir, shown on every page
# time_zone = "Asia/Taipei"     # the fraud desk's times (IANA name; default: the country's)

[limits]
code_window_seconds = 600       # a call code is accepted this long after issue
default_ttl_seconds = 900       # a ticket lives this long unless the dialer asks otherwise
max_ttl_seconds = 1800          # and never longer than this (the protocol's maximum)
word_choices = 6                # check-word choices shown to the customer (4 to 6)
client_failure_limit = 30       # failed lookups one client address may make ...
client_window_seconds = 900     # ... in this window
network_failure_limit = 300     # ... and one network (IPv4 /24, IPv6 /48) in that window
global_failure_budget = 600     # failed lookups per minute that start a wave ...
breaker_cooldown_seconds = 300  # ... during which clients and networks with failures are refused
reveals_per_agent_hour = 20     # app codes / phrases one agent may reveal in an hour ...
reveals_per_customer_hour = 3   # ... and that may be revealed for one customer in an hour
sign_in_failures_per_address_and_account = 10  # failed staff sign-ins (console, fraud desk) ...
sign_in_failures_per_address = 50   # ... from one address, whatever the account ...
sign_in_failures_per_account = 10   # ... and for one account, whatever the address ...
sign_in_window_seconds = 900        # ... in this window; past one even the right password waits
sign_in_known_network_days = 30     # ... except, for the account's limit, from a network the
                                    # account signed in from in these days
console_tickets_per_agent_minute = 10  # calls one agent may start on the console a minute

[voice]
# number = "+886 2 2345 6789"   # the voice line: customers key the call code in by phone
# calls_per_number_hour = 10    # calls one calling number may make to it in an hour
# Where verified customers may be put back through to: SIP domains and E.164 prefixes (the
# demo's PBX, a loopback PBX for trying the SIP adapter, and Taipei numbers). Nothing else
# can be set as an agent's transfer target or queue.
transfer_allowed = ["sip:*@pbx.shop.example", "sip:*@127.0.0.1", "+8862"]

# [alerts]
# webhook_url = "https://fraud.example/hooks/callproof"  # fraud-desk alerts are POSTed here,
#                               # signed (Standard Webhooks): see `callproof desk webhook-secret`
"""
