"""The new-password input shared by `callproof agents set-password` and `callproof desk add` /
`desk password`: a hidden prompt asked twice, or one line from stdin for scripts."""

from __future__ import annotations

import sys

import click


def new_password(from_stdin: bool) -> str:
    """The password typed twice at a hidden prompt, or stdin's first line (--password-stdin)
    without its line ending, so a password piped from a Windows file works too."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
