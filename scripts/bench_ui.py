#!/usr/bin/env python3
"""UI responsiveness while the band plays: prints JSON.

Runs the real window on the real Session (private Xvfb display + PulseAudio server),
plays with the computer keyboard (autoplay) and measures on the UI thread:
- tick_ms: one poll of snapshot()+roll() and the widget updates (p50/p99/max)
- paint_ms: one piano-roll repaint (p50/p99/max)
- ui_gap_ms: time between timer ticks (30 ms nominal; a long gap is a frozen window);
  ui_gap_playing_ms: the same from a second after the band started playing
- play_call_ms / stop_call_ms: how long Session.play()/stop() held the UI thread

and on the audio stream, as `liveband bench audio` reports them (liveband.bench.audio):
- stream_xruns (every underflow the stream reported while the band played) and
  audible_xruns (the window's dropout counter), xrun_causes (gil / no_callback / server)
- machine_stalls and xruns_vs_machine_stalls: a real-time stall watcher per CPU
  (liveband.bench.stallwatch), so that the machine's stalls are told apart from ours

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
    return {
        "p50": round(float(np.percentile(a, 50)), 2),
        "p99": round(float(np.percentile(a, 99)), 2),
        "max": round(float(a.max()), 2),
        "n": len(xs),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--blocksize", type=int, default=256)
    args = ap.parse_args()
    from engine.native import TIMING_RING
    from liveband.bench import audio_report as report
    from liveband.bench import stallwatch
    from liveband.bench.audio import timing_rows
    from liveband.bench.softaudio import SoftwareAudioServer
    from ui.xvfb import Xvfb

    tmp = Path(tempfile.mkdtemp(prefix="liveband-uibench-"))
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "config")
    os.environ["LIVEBAND_HOME"] = str(tmp / "home")
    watchers = stallwatch.start(str(tmp), args.seconds + 600.0)
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
        gap_at: list[float] = []  # when each gap ended (monotonic)
        paints: list[float] = []
        calls: dict[str, float] = {}
        blocks: list[np.ndarray] = []
        # [stream drained, next timing row, stream xruns at the start, soak start time]
        drain: list = [None, 0, 0, 0.0]
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
                    gap_at.append(time.monotonic())
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

            def drain_blocks():
                """The stream's per-block timing rows (a ring of TIMING_RING blocks) while
                the band plays; a replaced stream (buffer or device switch) starts anew."""
                out = session.audio
                if not (win.last_snapshot is not None and win.last_snapshot.playing):
                    return
                if drain[0] is None:
                    drain[:] = [out, out.timing.n, session.mixer.xruns, time.monotonic()]
                    return
                if out is not drain[0]:
                    drain[0], drain[1] = out, 0
                n = out.timing.n
                lo = max(drain[1], n - TIMING_RING + 1)
                if n > lo:
                    blocks.append(timing_rows(out, lo, n))
                drain[1] = n

            sampler = QTimer()
            sampler.timeout.connect(drain_blocks)
            sampler.start(1000)

            def finish():
                drain_blocks()
                drain.append(time.monotonic())
                drain.append(session.mixer.xruns)
                sampler.stop()
                player.stop()
                win.stop()
                win.close()

            QTimer.singleShot(int(args.seconds * 1000), finish)
            app.exec()
            snap = session.snapshot()
            native = bool(session.mixer.native)
        finally:
            session.close()
            for proc, _ in watchers:
                if proc.poll() is None and drain[0] is None:
                    proc.kill()
    played = len(drain) == 6
    t_start, t_end = (drain[3], drain[4]) if played else (0.0, 0.0)
    stalls, realtime = stallwatch.collect(watchers, t_start, t_end - t_start)
    rows = np.concatenate(blocks) if blocks else np.zeros((0, 6))
    audio = {
        "played_s": round(t_end - t_start, 1),
        "stream_xruns": int(drain[5] - drain[2]) if played else None,
        "audible_xruns": snap.xruns,
        "xrun_causes": report.xrun_causes(rows, args.blocksize / session.sample_rate),
        # when each came, in s from the start (a period points at a timer, a cluster at an event)
        "xrun_at_s": [round(float(t) - t_start, 2) for t in rows[rows[:, 5] > 0, 1]],
        "machine_stalls": report.stall_summary(stalls, realtime),
        "xruns_vs_machine_stalls": report.xruns_vs_stalls(
            rows, stalls, snap.audio_latency_ms / 1000.0 + args.blocksize / session.sample_rate
        )
        if rows.size
        else {},
        "callback": "c" if native else "python",
    }
    print(
        json.dumps(
            {
                "bench": "ui",
                "seconds": args.seconds,
                "blocksize": args.blocksize,
                "tick_ms": pct(ticks[10:]),
                "paint_ms": pct(paints[10:]),
                # the UI's stalls: the time between its 30 ms timer ticks
                "ui_gap_ms": pct(gaps[10:]),
                # ... once the band plays (starting it loads the model in a worker)
                "ui_gap_playing_ms": pct([g for g, t in zip(gaps, gap_at) if t_start + 1.0 <= t <= t_end]),
                **calls,
                **audio,
                "backend": snap.backend,
                "cpu_count": os.cpu_count(),
                "load_average": [round(x, 2) for x in os.getloadavg()],
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
