"""`liveband` / `liveband play`: open the desktop instrument (ui/)."""

from __future__ import annotations

import argparse
import os
import sys

from liveband.cli import UserError


def main(args: argparse.Namespace) -> int:
    preset = None
    if getattr(args, "preset", None):
        from liveband.presets import load_preset

        preset = load_preset(args.preset)  # a bad preset: one line, before anything opens
    try:
        from ui.app import run
    except ImportError as exc:  # PyQt6 missing or its system libraries absent
        raise UserError(f"the desktop app cannot start ({exc}); run 'make setup' to install what is missing") from exc
    if (
        sys.platform.startswith("linux")
        and not os.environ.get("QT_QPA_PLATFORM")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    ):
        raise UserError(
            "no display to open the window on; run it on a desktop, or headless with "
            "'xvfb-run liveband' (offline work: 'liveband render ...')"
        )
    steer = {}
    if getattr(args, "arranger", None) is not None:
        from engine.arranger import parse_split

        try:
            steer["arranger"] = parse_split(args.arranger)
        except ValueError as exc:
            raise UserError(f"--arranger: {exc}") from None
    if getattr(args, "chart", None):
        from engine.chart import ChartError, load_chart

        try:
            load_chart(args.chart)  # a bad chart: one line naming file and line, before any window
        except ChartError as exc:
            raise UserError(str(exc)) from None
        steer["chart"] = args.chart
    band = {k: getattr(args, k, None) for k in ("style", "tempo", "meter", "swing", "fills", "time_feel", "humanise")}
    if band["tempo"] is not None:
        from engine.clock import check_tempo

        band["tempo"] = check_tempo(band["tempo"])  # one line naming the range, before anything opens
    return run(
        blocksize=args.blocksize,
        backend=args.backend,
        quit_after=args.quit_after,
        autoplay=args.autoplay,
        preset=preset,
        preset_name=getattr(args, "preset", None),
        band={k: v for k, v in band.items() if v is not None},
        steer=steer,
    )
