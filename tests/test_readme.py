"""The README's library example runs as written (docs that match the code)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from callproof import init_data_dir

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_library_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text("utf-8"), re.S)
    assert blocks, "the README has a Python example"
    monkeypatch.chdir(tmp_path)
    init_data_dir(tmp_path / "callproof-data")
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["claims"].jti == namespace["call"].ticket_id  # type: ignore[attr-defined]


def test_ci_runs_the_readmes_test_command() -> None:
    """The README's second set-up command is the line .ci/run runs (issue 14, item 24): what CI
    proves is what a newcomer copies. It installs the system packages by the script it names."""
    first_block = re.search(r"```sh\n(.*?)```", README.read_text("utf-8"), re.S)
    assert first_block
    commands = [line for line in first_block.group(1).splitlines()
                if line and not line.startswith("#")]
    assert len(commands) == 2 and commands[0].endswith("callproof demo")
    ci = (README.parent / ".ci" / "run").read_text("utf-8").splitlines()
    assert commands[1] in ci
    assert commands[1].startswith("bash scripts/install-test-deps.sh && ")
    assert (README.parent / "scripts" / "install-test-deps.sh").is_file()
