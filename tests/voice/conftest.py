"""Fixtures for the voice line: an app with the TwiML adapter on, and a shared prompt cache."""

from __future__ import annotations

import base64
import hashlib
import hmac
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from callproof import FixedClock, Issuer, init_data_dir
from callproof.deployment import Deployment
from verifier_app import create_app, services

AUTH_TOKEN = "0123456789abcdef0123456789abcdef"  # noqa: S105 - a test's platform auth token
BASE = "https://voice.shop.example"


def platform_signature(token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature as the platform documents it, written here independently of the
    twilio package: base64(HMAC-SHA1(token, url + every POST field's name and value, sorted by
    name))."""
    payload = url + "".join(k + params[k] for k in sorted(params))
    mac = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


@pytest.fixture(scope="session")
def prompt_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One prompt cache for the session: each static prompt is rendered once."""
    return tmp_path_factory.mktemp("voice-cache")


@dataclass
class Line:
    """The TwiML adapter, called as the platform calls it."""

    app: Flask
    client: FlaskClient
    clock: FixedClock
    path: Path
    sid: str = "CA" + "0" * 32
    caller: str = "+886912345678"
    token: str = AUTH_TOKEN
    sent: list[str] = field(default_factory=list)

    @property
    def deployment(self) -> Deployment:
        with self.app.app_context():
            return services().deployment

    @property
    def issuer(self) -> Issuer:
        with self.app.app_context():
            return services().issuer

    def post(self, path: str, *, signature: str | None = None,
             **fields: str) -> TestResponse:
        params = {"CallSid": self.sid, "AccountSid": "AC" + "1" * 32, "From": self.caller,
                  "To": "+886223456789", "Direction": "inbound", "CallStatus": "in-progress",
                  **fields}
        url = BASE + path
        sig = platform_signature(self.token, url, params) if signature is None else signature
        response = self.client.post(path, data=params, base_url=BASE,
                                    headers={"X-Twilio-Signature": sig})
        self.sent.append(response.get_data(as_text=True))
        return response

    def twiml(self, path: str, **fields: str) -> ET.Element:
        response = self.post(path, **fields)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "text/xml"
        return ET.fromstring(response.get_data())  # noqa: S314 - our own app's answer


@pytest.fixture
def line(tmp_path: Path, backend: str, clock: FixedClock, prompt_cache: Path) -> Iterator[Line]:
    path = tmp_path / "data"
    init_data_dir(path, now=clock.now())
    app = create_app({"DATA_DIR": str(path), "TESTING": True, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                      "VOICE_PROMPT_CACHE": str(prompt_cache)})
    with app.app_context():
        services().deployment.clock = clock
    yield Line(app, app.test_client(), clock, path)
    with app.app_context():
        services().deployment.store.close()
