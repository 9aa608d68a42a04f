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
