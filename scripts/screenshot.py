#!/usr/bin/env python3
"""Make docs/screenshot.png: LiveBand's window playing, under a private Xvfb display and
a private PulseAudio server (real audio, real model, real SoundFont).

    .venv/bin/python scripts/screenshot.py [--input mic|keyboard] [--seconds 14] [--out docs/screenshot.png]
    .venv/bin/python scripts/screenshot.py --input keyboard --style blues --meter 12/8 --humanise 0.3 \
        --out docs/img/feel.png      # the feel controls (docs/ui.md)

--input mic (default) hums a synthetic voice into the server's software microphone, so
the shot shows the hummed-pitch line; --input keyboard plays a tune on the computer
keyboard through the app's own autoplay. Your settings are not read or changed (a
temporary settings folder is used).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_hum(path: Path, seconds: float, rate: int = 48000) -> None:
    """A hummed melody (engine/pitch/synth_hum: a voice-like source with vibrato and scoops)."""
    import numpy as np

    from engine.pitch.synth_hum import HumSpec, make_hum

    clips, total = [], 0.0
    seed = 11
    while total < seconds:
        clip = make_hum(HumSpec(seed=seed, register="female", sample_rate=rate, n_notes=10, tempo=100.0))
        clips.append(clip.audio)
        total += len(clip.audio) / rate
        seed += 1
    audio = np.concatenate(clips)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", choices=("mic", "keyboard"), default="mic")
    ap.add_argument("--seconds", type=float, default=14.0, help="play this long before the shot")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    ap.add_argument("--size", default="1360x820")
    ap.add_argument("--blocksize", type=int, default=512,
                    help="audio buffer (512 keeps a busy 2-core build machine free of dropouts)")
    band = ap.add_argument_group("the band, as `liveband play` takes it")
    band.add_argument("--style")
    band.add_argument("--meter")
    band.add_argument("--tempo", type=float)
    band.add_argument("--swing", type=float)
    band.add_argument("--fills")
    band.add_argument("--time", dest="time_feel")
    band.add_argument("--humanise", type=float)
    args = ap.parse_args()
    band_args = {k: getattr(args, k) for k in ("style", "meter", "tempo", "swing", "fills", "time_feel", "humanise")
                 if getattr(args, k) is not None}

    from liveband.bench.softaudio import SoftwareAudioServer
    from ui.xvfb import Xvfb

    tmp = Path(tempfile.mkdtemp(prefix="liveband-shot-"))
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "config")
    os.environ["LIVEBAND_HOME"] = str(tmp / "home")
    hum = tmp / "hum.wav"
    if args.input == "mic":
        write_hum(hum, args.seconds + 4)
    with Xvfb() as x, SoftwareAudioServer("pulse") as server:
        os.environ.update(x.env())
        from PyQt6.QtCore import QTimer

        from ui.app import make_app, make_session
        from ui.autoplay import KeyboardAutoplay
        from ui.mainwindow import MainWindow

        app = make_app()
        session, bs = make_session(blocksize=args.blocksize)
        feeder = []
        try:
            win = MainWindow(session, blocksize=bs)
            w, h = (int(v) for v in args.size.split("x"))
            win.resize(w, h)
            if band_args:
                win.apply_band(**band_args)
            win.show()
            player = KeyboardAutoplay(win) if args.input == "keyboard" else None

            def shoot() -> None:
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                if not win.grab().save(args.out):
                    print(f"could not write {args.out}", file=sys.stderr)
                if player is not None:
                    player.stop()
                win.close()

            def begin() -> None:
                if player is not None:
                    player.start()
                else:
                    win.play()
                    feeder.append(server.play_into_mic(hum))
                QTimer.singleShot(int(args.seconds * 1000), shoot)

            if player is not None:
                QTimer.singleShot(300, begin)
            else:
                win.set_input_mode("mic")

                def wait_for_mic() -> None:      # the pitch tracker loads in the background
                    if any("microphone" in n for n in session.snapshot().notices):
                        QTimer.singleShot(200, wait_for_mic)
                    else:
                        begin()
                QTimer.singleShot(300, wait_for_mic)
            app.exec()
        finally:
            for p in feeder:
                p.terminate()
            session.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
