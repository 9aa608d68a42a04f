"""Browser tests: a served instance on loopback, Debian's Chromium driven by Playwright.

Chromium is /usr/bin/chromium (never a downloaded browser); axe-core's axe.min.js comes from the
npm registry (scripts/install-test-deps.sh fetches it into .cache/axe-core, or set
CALLPROOF_AXE_JS). Without them the tests are skipped with the reason — unless
CALLPROOF_REQUIRE_BROWSER=1, as in CI.
Screenshots go to CALLPROOF_SCREENSHOTS (CI keeps artifacts/screenshots) or a temp dir.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from flask import Flask

from callproof import CheckFailed, init_data_dir, new_client_token
from verifier_app import create_app, services

ROOT = Path(__file__).resolve().parent.parent.parent
AXE = Path(os.environ.get("CALLPROOF_AXE_JS", ROOT / ".cache/axe-core/axe.min.js"))


@pytest.fixture(autouse=True)
def _axe_available() -> None:
    """Every browser test here also checks accessibility: axe-core must be there."""
    if not AXE.is_file():
        reason = f"axe-core is missing at {AXE} (bash .ci/run fetches it)"
        if os.environ.get("CALLPROOF_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests are required here: {reason}")
        pytest.skip(reason)


@dataclass
class Served:
    url: str
    app: Flask
    shots: Path

    def services(self) -> Any:
        with self.app.app_context():
            return services()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The app served for real on 127.0.0.1 (a thread of a werkzeug server)."""
    from werkzeug.serving import make_server

    path = tmp_path / "data"
    init_data_dir(path)
    app = create_app({"DATA_DIR": str(path)})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    shots = Path(os.environ.get("CALLPROOF_SCREENSHOTS", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    try:
        yield Served(f"http://127.0.0.1:{server.server_port}", app, shots)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            services().deployment.store.close()


def axe_violations(page: Any, *, every_impact: bool = False) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the page as it is now (``every_impact``:
    minor and moderate ones too)."""
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        """async (every) => (await axe.run(document, {resultTypes: ['violations']})).violations
             .filter(v => every || v.impact === 'serious' || v.impact === 'critical')
             .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target)}))""",
        every_impact)
    return found


# --- the fraud desk ----------------------------------------------------------------------------

#: The desk user the ``desk_sign_in`` fixture adds and signs in, and their password.
DESK_USER, DESK_PASSWORD = "d-001", "a long fraud desk password"


class DeskSignIn(Protocol):
    def __call__(self, lang: str = "en", *, bypass_csp: bool, width: int = 1200,
                 height: int = 900) -> Any: ...


@pytest.fixture
def desk_sign_in(browser: Any, served: Served) -> Iterator[DeskSignIn]:
    """Desk user d-001 of the served instance, and how they sign in: ``desk_sign_in(lang,
    bypass_csp=…, width=…)`` opens a new browser context at that width, signs in with the desk's
    own form and gives the page once the live desk shows. The contexts close after the test."""
    served.services().desk_users.add(DESK_USER, "Lin Fraud Team", DESK_PASSWORD)
    contexts: list[Any] = []

    def sign_in(lang: str = "en", *, bypass_csp: bool, width: int = 1200,
                height: int = 900) -> Any:
        ctx = browser.new_context(bypass_csp=bypass_csp,
                                  viewport={"width": width, "height": height})
        contexts.append(ctx)
        page = ctx.new_page()
        page.goto(f"{served.url}/fraud/sign-in?lang={lang}")
        page.fill("#user_id", DESK_USER)
        page.fill("#password", DESK_PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_selector("#alert-table")
        return page

    yield sign_in
    for ctx in contexts:
        ctx.close()


def says_no(served: Served) -> str:
    """A customer answers "No" to the phone question (the library's check flow, as the check
    page runs it): a number_denied alert for the desk. Returns the call's ticket id."""
    s = served.services()
    call = s.issuer.issue(agent_id="a-001", reason="order_delivery", phone="+886912345678")
    token = new_client_token()
    s.flow.lookup(call.code_display, token)
    with pytest.raises(CheckFailed):
        s.flow.answer_number(call.ticket_id, token, yes=False)
    return call.ticket_id
