#!/usr/bin/env python3
"""UI responsiveness while the band plays: prints JSON.

Runs the real window on the real Session (private Xvfb display + PulseAudio server),
plays with the computer keyboard (autoplay) and measures on the UI thread:
- tick_ms: one poll of snapshot()+roll() and the widget updates (p50/p99/max)
- paint_ms: one piano-roll repaint (p50/p99/max)
- ui_gap_ms: time between timer ticks (30 ms nominal; a long gap is a frozen window)
- play_call_ms / stop_call_ms: how long Session.play()/stop() held the UI thread

    .venv/bin/python scripts/bench_ui.py [--seconds 15] [--blocksize 256]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pct(xs: list[float]) -> dict:
    if not xs:
        return {}
    a = np.asarray(xs)
    return {"p50": round(float(np.percentile(a, 50)), 2), "p99": round(float(np.percentile(a, 99)), 2),
            "max": round(float(a.max()), 2), "n": len(xs)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--blocksize", type=int, default=256)
    args = ap.parse_args()
    from liveband.bench.softaudio import SoftwareAudioServer
    from ui.xvfb import Xvfb

    tmp = Path(tempfile.mkdtemp(prefix="liveband-uibench-"))
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "config")
    os.environ["LIVEBAND_HOME"] = str(tmp / "home")
    with Xvfb() as x, SoftwareAudioServer("pulse"):
        os.environ.update(x.env())
        from PyQt6.QtCore import QTimer

        from ui.app import make_app, make_session
        from ui.autoplay import KeyboardAutoplay
        from ui.mainwindow import MainWindow

        app = make_app()
        session, bs = make_session(blocksize=args.blocksize)
        ticks: list[float] = []
        gaps: list[float] = []
        paints: list[float] = []
        calls: dict[str, float] = {}
        try:
            win = MainWindow(session, blocksize=bs)
            win.resize(1360, 820)
            win.show()
            orig_tick, orig_paint = win.tick, win.roll.paintEvent
            last = [0.0]

            def timed_tick():
                t0 = time.perf_counter()
                if last[0]:
                    gaps.append((t0 - last[0]) * 1000)
                last[0] = t0
                orig_tick()
                ticks.append((time.perf_counter() - t0) * 1000)

            def timed_paint(ev):
                t0 = time.perf_counter()
                orig_paint(ev)
                paints.append((time.perf_counter() - t0) * 1000)

            win.timer.timeout.disconnect()
            win.timer.timeout.connect(timed_tick)
            win.roll.paintEvent = timed_paint
            for name in ("play", "stop"):
                fn = getattr(session, name)

                def wrapped(fn=fn, name=name):
                    t0 = time.perf_counter()
                    fn()
                    calls.setdefault(f"{name}_call_ms", round((time.perf_counter() - t0) * 1000, 1))
                setattr(session, name, wrapped)
            player = KeyboardAutoplay(win)
            QTimer.singleShot(300, player.start)

            def finish():
                player.stop()
                win.stop()
                win.close()
            QTimer.singleShot(int(args.seconds * 1000), finish)
            app.exec()
            snap = session.snapshot()
        finally:
            session.close()
    print(json.dumps({"bench": "ui", "seconds": args.seconds, "blocksize": args.blocksize,
                      "tick_ms": pct(ticks[10:]), "paint_ms": pct(paints[10:]), "ui_gap_ms": pct(gaps[10:]),
                      **calls, "xruns": snap.xruns, "backend": snap.backend, "cpu_count": os.cpu_count()},
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
