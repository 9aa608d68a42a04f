"""Requests spread over both instances behind nginx, and go on when one dies (-9)."""

from __future__ import annotations

import os
import signal
from collections import Counter
from typing import Any

from .conftest import issue
from .test_front import Browser


def _upstreams(front: Any) -> Counter[str]:
    log = (front.nginx.prefix / "access.log").read_text()
    return Counter(line.split()[0] for line in log.splitlines() if line.strip())


def test_requests_spread_over_both_instances_and_go_on_when_one_dies(front: Any) -> None:
    code = issue(front.env)["code"]
    browser = Browser.new(front)
    for _ in range(6):
        status, page = browser.lookup(code)
        assert status == 200 and 'value="yes"' in page
    seen = _upstreams(front)
    addresses = {i.address for i in front.instances}
    assert set(seen) == addresses and min(seen.values()) >= 3, seen

    # One instance dies (-9, its whole process group): the pool carries on.
    dead = front.instances[0]
    os.killpg(dead.process.pid, signal.SIGKILL)
    dead.process.wait(timeout=30)
    before = _upstreams(front)
    for _ in range(6):
        status, page = browser.lookup(code)
        assert status == 200 and 'value="yes"' in page
        assert browser.get("/healthz")[0] == 200
    after = _upstreams(front) - before
    assert after[front.instances[1].address] >= 18, after
