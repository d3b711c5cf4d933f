"""`liveband sessions [list]` and `liveband sessions export NAME -o DIR`: recorded takes."""
from __future__ import annotations

import argparse
import sys

from engine.errors import first_line
from engine.recorder import export_session, list_sessions
from liveband.cli import UserError
from liveband.paths import sessions_dir


def _list() -> int:
    from rich.console import Console
    from rich.table import Table

    root = sessions_dir()
    rows = list_sessions(root)
    bad = [r for r in rows if r["problem"]]
    rows = [r for r in rows if not r["problem"]]
    console = Console()
    for r in bad:       # one line each, and the good sessions are still listed
        print(f"liveband sessions: {r['name']} not listed: {r['problem']}", file=sys.stderr)
    if not rows:
        console.print(f"no recorded sessions in {root}")
        return 0
    table = Table(title=f"Recorded sessions ({root})", title_justify="left")
    for col in ("name", "started", "length", "tempo", "style", "files"):
        table.add_column(col)
    for r in rows:
        secs = r["seconds"]
        length = f"{int(secs // 60)}:{secs % 60:04.1f}" + ("" if r["complete"] else " (interrupted)")
        tempo = f"{r['tempo']:g}" if r["tempo"] else ""
        table.add_row(r["name"], r["started"], length, tempo, r["style"], ", ".join(r["files"]))
    console.print(table)
    return 0


def main(args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list()
    if not args.name:
        raise UserError("say which session to export: liveband sessions export NAME -o DIR "
                        "(see 'liveband sessions list')")
    if not args.output:
        raise UserError("say where to export: -o DIR")
    try:
        written = export_session(sessions_dir(), args.name, args.output)
    except OSError as exc:      # anything export_session did not word itself
        raise UserError(f"cannot export {args.name[:60]!r}: {first_line(exc)}") from None
    for path in written:
        print(path)
    return 0
