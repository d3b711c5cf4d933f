"""`liveband sessions [list]`, `export NAME -o DIR`, `rename OLD NEW`, `delete NAME`: recorded takes."""

from __future__ import annotations

import argparse
import sys

from engine.errors import first_line
from engine.takes import SessionError, delete_session, export_session, list_sessions, rename_session
from liveband.cli import UserError
from liveband.paths import sessions_dir


def _list() -> int:
    from rich.console import Console
    from rich.table import Table

    root = sessions_dir()
    rows = list_sessions(root)
    bad = [r for r in rows if r["problem"]]
    rows = [r for r in rows if not r["problem"]]
    # piped or logged, the table is not squeezed into 80 columns (rich's default there)
    console = Console() if sys.stdout.isatty() else Console(width=200)
    for r in bad:  # one line each, and the good sessions are still listed
        print(f"liveband sessions: {r['name']} not listed: {r['problem']}", file=sys.stderr)
    if not rows:
        console.print(f"no recorded sessions in {root}")
        return 0
    table = Table(title=f"Recorded sessions ({root})", title_justify="left")
    for col in ("name", "started", "length", "tempo", "meter", "key", "input", "style", "files"):
        table.add_column(col, no_wrap=col in ("name", "length", "key"))
    for r in rows:
        secs = r["seconds"]
        length = f"{int(secs // 60)}:{secs % 60:04.1f}" + ("" if r["complete"] else " (interrupted)")
        if r["lost_seconds"]:
            length += f" ({r['lost_seconds']:.1f} s lost)"
        tempo = f"{r['tempo']:g}" if r["tempo"] else ""
        table.add_row(
            r["name"], r["started"], length, tempo, r["meter"], r["key"], r["input"], r["style"], ", ".join(r["files"])
        )
    console.print(table)
    return 0


def _rename_or_delete(args: argparse.Namespace) -> int:
    if not args.name:
        raise UserError(
            f"say which session to {args.action}: liveband sessions {args.action} NAME"
            + (" NEW" if args.action == "rename" else "")
            + " (see 'liveband sessions list')"
        )
    try:
        if args.action == "rename":
            if not args.new_name:
                raise UserError("say the new name: liveband sessions rename OLD NEW")
            print(f"renamed {args.name} to {rename_session(sessions_dir(), args.name, args.new_name).name}")
        else:
            delete_session(sessions_dir(), args.name)
            print(f"deleted {args.name}")
    except (FileNotFoundError, SessionError) as exc:
        raise UserError(first_line(exc)) from None
    except OSError as exc:
        raise UserError(f"cannot {args.action} {args.name[:60]!r}: {first_line(exc)}") from None
    return 0


def main(args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list()
    if args.action in ("rename", "delete"):
        return _rename_or_delete(args)
    if not args.name:
        raise UserError(
            "say which session to export: liveband sessions export NAME -o DIR (see 'liveband sessions list')"
        )
    if not args.output:
        raise UserError("say where to export: -o DIR")
    try:
        written = export_session(sessions_dir(), args.name, args.output)
    except OSError as exc:  # anything export_session did not word itself
        raise UserError(f"cannot export {args.name[:60]!r}: {first_line(exc)}") from None
    for path in written:
        print(path)
    return 0
