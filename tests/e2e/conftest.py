"""Browser tests: a served instance on loopback, Debian's Chromium driven by Playwright.

Chromium is /usr/bin/chromium (never a downloaded browser); axe-core's axe.min.js comes from the
npm registry (.ci/run fetches it into .cache/axe-core, or set CALLPROOF_AXE_JS). Without them the
tests are skipped with the reason — unless CALLPROOF_REQUIRE_BROWSER=1, as in CI.
Screenshots go to CALLPROOF_SCREENSHOTS (CI keeps artifacts/screenshots) or a temp dir.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from callproof import init_data_dir
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
