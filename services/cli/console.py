"""What every command shares: the two consoles, the one error path, progress, output formats."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterable
from enum import IntEnum, StrEnum
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

console = Console(highlight=False, soft_wrap=True, emoji=False)  # model names like "fire"
err = Console(stderr=True, highlight=False, emoji=False)

Progress = Callable[[str], None]


class ExitCode(IntEnum):
    """What ``bentomesh`` exits with (documented in the README)."""

    OK = 0
    FAILED = 1  # the command ran and the outcome is a failure (a stage failed, bad input)
    USAGE = 2  # the command line or a setting is wrong
    UNREACHABLE = 3  # a dependency does not answer: broker, deployer, monitor, Docker engine


class Output(StrEnum):
    table = "table"
    json = "json"


OutputOpt = Annotated[
    Output, typer.Option("--output", "-o", help="table for people, json for scripts.")
]


def fail(message: str, code: int = ExitCode.FAILED) -> NoReturn:
    """Print ``error: message`` as plain text (never read as markup) and exit with ``code``."""
    err.print(Text("error: ", style="red") + Text(message))
    raise typer.Exit(code)


def stop_on_sigterm() -> None:
    """SIGTERM ends a long-running command the way Ctrl-C does (its cleanup runs)."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def progress_printer(status: Any, out: Console = console) -> Progress:
    """Print each progress message and show it as the spinner's text."""

    def show(message: str) -> None:
        out.print(f"  {message}", markup=False)
        status.update(message)

    return show


def print_json_lines(rows: Iterable[Any]) -> None:
    """One JSON document per line, unwrapped (for jq and other programs)."""
    for row in rows:
        print(json.dumps(row, default=str), flush=True)
