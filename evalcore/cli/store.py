"""`evalcore store status` and `evalcore store upgrade`: the database's schema against the
migrations of this evalcore, and upgrading it at a moment an operator chooses."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from evalcore.cli.common import JsonOption, fail

if TYPE_CHECKING:
    from evalcore.store.engine import SchemaState

store_app = typer.Typer(
    help="The database: its schema revision, and upgrading it.", no_args_is_help=True
)


@store_app.command("status")
def status(as_json: JsonOption = False) -> None:
    """The schema revision of the store against this evalcore's newest; nothing is changed.

    Exits 0 when it is up to date, 1 when migrations are still to apply.

    Example: [bold]EVALCORE_DATABASE_URL=postgresql://evalcore@db/evalcore evalcore store status[/]
    """
    state = _state()
    if as_json:
        print(
            json.dumps(
                {
                    "database": state.database,
                    "current": state.current,
                    "head": state.head,
                    "pending": list(state.pending),
                    "up_to_date": not state.pending,
                },
                indent=2,
            )
        )
    else:
        from rich.markup import escape

        from evalcore.cli.console import console

        console.print(f"database {escape(state.database)}", highlight=False)
        console.print(
            f"schema revision {state.current or 'none (empty database)'}; "
            f"this evalcore's newest {state.head}",
            highlight=False,
        )
        if not state.pending:
            console.print("[green]up to date[/]")
        else:
            console.print(f"{len(state.pending)} migration(s) to apply:", highlight=False)
            for line in state.pending:
                console.print(f"  {escape(line)}", highlight=False)
    if state.pending:
        raise typer.Exit(1)


@store_app.command("upgrade")
def upgrade(as_json: JsonOption = False) -> None:
    """Apply the migrations the store does not have yet (Alembic), then say where it stands.

    Every process upgrades the store when it first opens it, one at a time under a lock;
    run this once before starting new workers to do it at a moment you choose.

    Example: [bold]evalcore store upgrade[/]
    """
    from evalcore.cli.common import open_store

    before = _state()
    open_store()  # migrates, under the migration lock
    after = _state()
    if as_json:
        print(
            json.dumps(
                {
                    "database": after.database,
                    "from": before.current,
                    "to": after.current,
                    "applied": list(before.pending),
                },
                indent=2,
            )
        )
        return
    from rich.markup import escape

    from evalcore.cli.console import console

    if not before.pending:
        console.print(f"already at {after.current}; nothing to apply", highlight=False)
        return
    for line in before.pending:
        console.print(f"applied {escape(line)}", highlight=False)
    console.print(
        f"[green]upgraded[/] {escape(after.database)} from {before.current or 'empty'} to "
        f"{after.current}",
        highlight=False,
    )


def _state() -> SchemaState:
    from rich.markup import escape

    from evalcore.store.engine import StoreUnavailable, schema_state

    try:
        return schema_state()
    except StoreUnavailable as exc:
        fail(escape(str(exc)))
