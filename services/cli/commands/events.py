"""The event stream: ``events tail``, ``dlq list``, ``dlq replay``."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from bentomesh_contracts.kafka import KafkaSettings
from services.cli.console import ExitCode, Output, OutputOpt, console, fail, print_json_lines
from services.cli.console import stop_on_sigterm as _stop_on_sigterm
from services.status.render import printable

events_app = typer.Typer(help="Watch the event stream.", no_args_is_help=True)
dlq_app = typer.Typer(help="Inspect and re-drive dead-lettered events.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Same as --output json.")]


def _short(topic: str) -> str:
    return topic.removeprefix("bentomesh.").removesuffix(".v1")


def topic_named(name: str) -> str:
    """``health-alert``, ``bentomesh.health-alert`` or the full name -> the full topic name."""
    from bentomesh_contracts.topics import ALL_TOPICS

    for full in ALL_TOPICS:
        if _short(name) == _short(full):
            return full
    fail(
        f"--topic {name!r} is not a mesh topic; one of: {', '.join(map(_short, ALL_TOPICS))}",
        ExitCode.USAGE,
    )


@events_app.command("tail")
def events_tail(
    chain: Annotated[str | None, typer.Option(help="Only this chain id (prefix ok).")] = None,
    topic: Annotated[
        list[str] | None,
        typer.Option(help="Topic to read, e.g. health-alert (repeatable).", show_default="all"),
    ] = None,
    follow: Annotated[bool, typer.Option(help="Keep waiting for new events.")] = True,
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest event.")] = True,
    output: OutputOpt = Output.table,
    as_json: JsonFlag = False,
) -> None:
    """Print the event stream, one line per event (time, type, model:version, summary);
    with ``--output json``, one CloudEvent JSON object per line (for jq)."""
    from bentomesh_contracts.topics import ALL_TOPICS
    from services.cli.tail import run_tail

    as_json = as_json or output is Output.json
    names = tuple(topic_named(t) for t in topic) if topic else ALL_TOPICS
    _stop_on_sigterm()
    run_tail(
        KafkaSettings(),
        topic_names=names,
        chain=chain,
        follow=follow,
        from_beginning=from_beginning,
        as_json=as_json,
        emit=(
            (lambda line: print(line, flush=True))
            if as_json
            else (lambda line: console.print(line, markup=False, soft_wrap=True))
        ),
    )


@dlq_app.command("list")
def dlq_list(output: OutputOpt = Output.table, as_json: JsonFlag = False) -> None:
    """Every dead letter: where it came from, which service refused it and why."""
    from services.cli.dlq import read_letters

    letters = asyncio.run(read_letters(KafkaSettings()))
    if as_json or output is Output.json:
        print_json_lines(
            {
                "ref": letter.ref,
                **letter.headers,
                "bytes": len(letter.value),
                "value": letter.value.decode(errors="replace"),
            }
            for letter in letters
        )
        return
    if not letters:
        console.print("no dead letters")
        return
    table = Table(title=f"{len(letters)} dead letters", title_justify="left")
    for column in ("ref", "time", "from", "service", "reason", "bytes"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        h = letter.headers
        when = dt.datetime.fromtimestamp(letter.timestamp_ms / 1000).strftime("%m-%d %H:%M:%S")
        where = f"[{h.get('source-partition', '?')}]@{h.get('source-offset', '?')}"
        cells = (
            letter.ref,
            when,
            h.get("source-topic", "?") + where,
            h.get("service", "?"),
            h.get("reason", "?"),
            str(len(letter.value)),
        )
        # Text, not markup; control characters escaped: anyone can write a dead letter
        table.add_row(*(Text(printable(cell)) for cell in cells))
    console.print(table)


@dlq_app.command("replay")
def dlq_replay(
    refs: Annotated[
        list[str] | None, typer.Argument(help="Letters to replay (partition:offset); default all.")
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="Only letters whose reason contains this.")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Show what would be replayed.")] = False,
) -> None:
    """Send dead letters' original bytes back to the topics they came from."""
    from services.cli.dlq import read_letters, replay, select

    settings = KafkaSettings()
    try:
        chosen = select(asyncio.run(read_letters(settings)), refs or [], reason)
    except KeyError as exc:
        fail(str(exc.args[0]))
    for letter in chosen:
        verb = "would replay" if dry_run else "replaying"
        console.print(f"{verb} {letter.ref} -> {letter.source_topic}", markup=False)
    if dry_run or not chosen:
        console.print(f"{len(chosen)} letters selected")
        return
    sent = asyncio.run(replay(settings, chosen))
    console.print(f"replayed {sent} letters")
