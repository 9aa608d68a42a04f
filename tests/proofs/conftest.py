"""Fixtures for the enrolled-proof tests: no seal key leaks in from the environment."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_seal_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLPROOF_SEAL_KEY", raising=False)
