#!/usr/bin/env python3
"""Make docs/screenshot.png: LiveBand's window playing, under a private Xvfb display and
a private PulseAudio server (real audio, real model, real SoundFont), with the computer
keyboard played by the app's own autoplay.

    .venv/bin/python scripts/screenshot.py [--seconds 16] [--out docs/screenshot.png]

Your own settings are not read or changed (a temporary settings folder is used).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=16.0, help="play this long before the shot")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    ap.add_argument("--size", default="1360x820")
    ap.add_argument("--blocksize", type=int, default=512,
                    help="audio buffer (512 keeps a busy 2-core build machine free of dropouts)")
    args = ap.parse_args()

    from engine.softaudio import SoftwareAudioServer
    from ui.xvfb import Xvfb

    tmp = Path(tempfile.mkdtemp(prefix="liveband-shot-"))
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
        try:
            win = MainWindow(session, blocksize=bs)
            w, h = (int(v) for v in args.size.split("x"))
            win.resize(w, h)
            win.show()
            player = KeyboardAutoplay(win)
            QTimer.singleShot(300, player.start)

            def shoot() -> None:
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                if not win.grab().save(args.out):
                    print(f"could not write {args.out}", file=sys.stderr)
                player.stop()
                win.close()

            QTimer.singleShot(int(args.seconds * 1000), shoot)
            app.exec()
        finally:
            session.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
