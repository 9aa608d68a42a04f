"""`callproof` run in-process through click's CliRunner, for the command-line tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner, Result

from callproof._cli import cli

Run = Callable[..., Result]


def callproof_over(data: Path, backend: str, **env: str) -> Run:
    """`callproof` over the data dir ``data``, initialised first, on ``backend``'s database
    ('' for SQLite); ``env`` adds environment variables."""
    env = {"CALLPROOF_DATA_DIR": str(data), **env}
    if backend:
        env["CALLPROOF_DATABASE_URL"] = backend

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)

    assert invoke("init").exit_code == 0
    return invoke


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def refused(result: Result, says: str, code: int = 1) -> None:
    assert result.exit_code == code, result.output
    assert says in result.output, result.output
